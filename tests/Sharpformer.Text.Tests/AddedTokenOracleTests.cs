using System.Text.Json.Nodes;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Sharpformer.Text.Tests;

/// <summary>Added-token flags (normalized, lstrip, rstrip, single_word) against HF, on tokenizer.json variants.</summary>
public class AddedTokenOracleTests
{
    private static readonly string[] Inputs =
    [
        "CAFÉ au lait", "café", "my cafe.", "Cafe\u0301!", "xcafe", "a <ent> b", "a   <ent>   b", "a<ent>b", "<ent>", " <ent> ",
        "ent <ENT> <ent", "hello <|endoftext|> world", "hello<|endoftext|>  world", "x  <|endoftext|>", "word<sw> <sw> <sw>s",
        "\t<ent>\n", "[MASK] <ent>[MASK]",
    ];

    public static TheoryData<string> Models => new() { "bert", "gpt2" };

    [Theory]
    [MemberData(nameof(Models))]
    public void Encode_AddedTokenFlags_SameIdsAsHuggingFace(string model)
    {
        var source = model == "bert" ? TestData.BertTokenizerJsonFolder : TestData.Gpt2TokenizerJsonFolder;
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer.json")))!;
        var added = json["added_tokens"]!.AsArray();
        var next = json["model"]!["vocab"]!.AsObject().Count;
        added.Add(Token(next, "Café", normalized: true, lstrip: false, rstrip: false, singleWord: false));
        added.Add(Token(next + 1, "<ent>", normalized: false, lstrip: true, rstrip: true, singleWord: false));
        added.Add(Token(next + 2, "<sw>", normalized: false, lstrip: false, rstrip: false, singleWord: true));
        if (model == "gpt2")
        {
            // Give <|endoftext|> the lstrip/rstrip flags RoBERTa gives its <mask>.
            var eot = added[0]!;
            eot["lstrip"] = true;
            eot["rstrip"] = true;
        }

        var folder = TestData.NewFolder("added-" + model);
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        var oracle = new HfTokenizer(path);
        var ours = AutoTokenizer.FromPretrained(folder);

        foreach (var text in Inputs)
        {
            var expected = oracle.Encode(text).Select(i => (int)i).ToArray();
            var actual = ours.Encode(text).Ids.ToArray();
            Assert.True(expected.SequenceEqual(actual), $"{model} '{OracleTests.Escape(text)}': HF [{string.Join(' ', expected)}] ours [{string.Join(' ', actual)}]");
        }
    }

    private static JsonObject Token(int id, string content, bool normalized, bool lstrip, bool rstrip, bool singleWord) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = singleWord,
        ["lstrip"] = lstrip,
        ["rstrip"] = rstrip,
        ["normalized"] = normalized,
        ["special"] = false,
    };
}
