using System.Text.Json;

namespace Sharpformer.Text.Tests;

/// <summary>
/// SentencePiece (T5's spiece.model, Marian's source.spm + vocab.json) against python3-sentencepiece 0.1.97: tiny Unigram
/// and BPE models trained by tests/fixtures/sentencepiece/make_fixture.py, with the pieces and ids it gives for tricky
/// inputs, and the ids HF's T5Tokenizer / MarianTokenizer post-processing gives (written out in that script).
/// </summary>
public sealed class SentencePieceTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "fixtures", "sentencepiece");

    private static readonly Lazy<JsonDocument> Expected = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json"))));

    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        var count = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "expected.json"))).RootElement.GetProperty("cases").GetArrayLength();
        for (var i = 0; i < count; i++)
        {
            data.Add(i);
        }

        return data;
    }

    private static JsonElement Case(int index) => Expected.Value.RootElement.GetProperty("cases")[index];

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static (int, int)[] Spans(JsonElement array) => array.EnumerateArray().Select(e => (e[0].GetInt32(), e[1].GetInt32())).ToArray();

    private static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();

    private static SentencePieceTokenizer Unigram(bool appendEos) =>
        SentencePieceTokenizer.FromFile(Path.Combine(Folder, "unigram.model"), new SentencePieceOptions { AppendEos = appendEos });

    private static SentencePieceTokenizer Bpe() => SentencePieceTokenizer.FromFile(
        Path.Combine(Folder, "bpe.model"),
        new SentencePieceOptions { AppendEos = false, SpecialTokens = new SpecialTokens { Unk = "<unk>", Bos = "<s>", Eos = "</s>" } });

    private static SentencePieceTokenizer Marian() =>
        SentencePieceTokenizer.FromMarianFiles(Path.Combine(Folder, "unigram.model"), Path.Combine(Folder, "marian_vocab.json"));

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void UnigramPiecesAndIdsEqualSentencePiece(int index)
    {
        var c = Case(index);
        var encoding = Unigram(appendEos: false).Encode(c.GetProperty("text").GetString()!);
        Assert.Equal(Strings(c.GetProperty("unigram").GetProperty("pieces")), encoding.Tokens);
        Assert.Equal(Ints(c.GetProperty("unigram").GetProperty("ids")), encoding.Ids);
        Assert.Equal(Spans(c.GetProperty("unigram").GetProperty("offsets")), encoding.Offsets.Select(o => (o.Start, o.End)));
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void BpePiecesAndIdsEqualSentencePiece(int index)
    {
        var c = Case(index);
        var encoding = Bpe().Encode(c.GetProperty("text").GetString()!);
        Assert.Equal(Strings(c.GetProperty("bpe").GetProperty("pieces")), encoding.Tokens);
        Assert.Equal(Ints(c.GetProperty("bpe").GetProperty("ids")), encoding.Ids);
        Assert.Equal(Spans(c.GetProperty("bpe").GetProperty("offsets")), encoding.Offsets.Select(o => (o.Start, o.End)));
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void ModelDecodeEqualsSentencePiece(int index)
    {
        // The model's own decode (unknown pieces read " ⁇ "), below HF's special-token handling.
        var c = Case(index);
        foreach (var name in new[] { "unigram", "bpe" })
        {
            var model = SentencePieceModel.Read(File.ReadAllBytes(Path.Combine(Folder, name + ".model")), name);
            Assert.Equal(c.GetProperty(name).GetProperty("decoded").GetString(), model.Decode(Ints(c.GetProperty(name).GetProperty("ids"))));
        }
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void T5AppendsEosAndDecodesWithoutSpecials(int index)
    {
        var c = Case(index);
        var tokenizer = Unigram(appendEos: true);
        var ids = tokenizer.Encode(c.GetProperty("text").GetString()!).Ids;
        Assert.Equal(Ints(c.GetProperty("t5_ids")), ids);
        Assert.Equal(c.GetProperty("t5_decoded").GetString(), tokenizer.Decode(ids));
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void MarianMapsPiecesThroughVocabJson(int index)
    {
        var c = Case(index);
        var tokenizer = Marian();
        var encoding = tokenizer.Encode(c.GetProperty("text").GetString()!);
        Assert.Equal(Ints(c.GetProperty("marian_ids")), encoding.Ids);
        Assert.Equal([.. Strings(c.GetProperty("marian_tokens")), "</s>"], encoding.Tokens);
        Assert.Equal(c.GetProperty("marian_decoded").GetString(), tokenizer.Decode(encoding.Ids));
    }

    [Fact]
    public void MarianKeepsALeadingLanguageCodeAndDropsOthers()
    {
        var tokenizer = Marian();
        foreach (var c in Expected.Value.RootElement.GetProperty("marian_language_cases").EnumerateArray())
        {
            var encoding = tokenizer.Encode(c.GetProperty("text").GetString()!);
            Assert.Equal(Ints(c.GetProperty("ids")), encoding.Ids);
            Assert.Equal([.. Strings(c.GetProperty("tokens")), "</s>"], encoding.Tokens);
        }
    }

    [Fact]
    public void MarianListsLanguageCodesAndRejectsUnknownOnes()
    {
        var tokenizer = Marian();
        Assert.Equal([">>de<<", ">>es<<", ">>fr<<"], tokenizer.LanguageCodes);
        tokenizer.CheckTargetLanguage(">>de<< Hello");
        var unknown = Assert.Throws<ArgumentException>(() => tokenizer.CheckTargetLanguage(">>xx<< Hello"));
        Assert.Contains("'>>xx<<'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains(">>de<<, >>es<<, >>fr<<", unknown.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<ArgumentException>(() => tokenizer.CheckTargetLanguage("Hello"));
        Assert.Contains("available: >>de<<, >>es<<, >>fr<<", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void T5SentinelsAreAddedTokensCountedFromTheEnd()
    {
        var tokenizer = SentencePieceTokenizer.FromFile(Path.Combine(Folder, "unigram.model"), new SentencePieceOptions { ExtraIds = 100 });
        var pieces = SentencePieceTokenizer.FromFile(Path.Combine(Folder, "unigram.model")).VocabularySize;
        Assert.Equal(pieces + 100, tokenizer.VocabularySize);
        Assert.Equal(pieces + 99, tokenizer.TokenToId("<extra_id_0>"));
        Assert.Equal(pieces, tokenizer.TokenToId("<extra_id_99>"));
        var encoding = tokenizer.Encode("Hello <extra_id_0> world");
        Assert.Contains(pieces + 99, encoding.Ids);
        Assert.Equal(["<extra_id_0>"], encoding.Tokens.Where(t => t.StartsWith("<extra", StringComparison.Ordinal)));
        Assert.Contains("<extra_id_0>", tokenizer.Decode(encoding.Ids, skipSpecialTokens: false), StringComparison.Ordinal);
        Assert.DoesNotContain("extra_id", tokenizer.Decode(encoding.Ids), StringComparison.Ordinal);
    }

    [Fact]
    public void AMissingOrDamagedModelFailsClearly()
    {
        var missing = Assert.Throws<FileNotFoundException>(() => SentencePieceTokenizer.FromFile(Path.Combine(Folder, "nope.model")));
        Assert.Contains("nope.model", missing.Message, StringComparison.Ordinal);
        var damaged = Assert.Throws<InvalidDataException>(() => SentencePieceTokenizer.FromFile(Path.Combine(Folder, "expected.json")));
        Assert.Contains("expected.json", damaged.Message, StringComparison.Ordinal);
    }
}
