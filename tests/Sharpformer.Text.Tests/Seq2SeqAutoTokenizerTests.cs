using System.Text.Json;

namespace Sharpformer.Text.Tests;

/// <summary>
/// AutoTokenizer picks the encoder-decoder families' tokenizers by tokenizer_config.json <c>tokenizer_class</c> and the
/// files present: T5 (spiece.model, 100 sentinels, &lt;/s&gt; appended), Marian (source.spm + vocab.json) and BART (byte-level
/// BPE with &lt;s&gt; … &lt;/s&gt;). Expected ids come from python3-sentencepiece (tests/fixtures/sentencepiece) and from our GPT-2
/// tokenizer (itself checked against HF's Rust tokenizers) wrapped in RoBERTa's template.
/// </summary>
public sealed class Seq2SeqAutoTokenizerTests
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "sentencepiece");

    private static JsonElement FirstCases() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "expected.json"))).RootElement.GetProperty("cases");

    [Fact]
    public void T5FolderLoadsSpieceModelWithSentinels()
    {
        var folder = TestData.NewFolder("t5");
        File.Copy(Path.Combine(Fixtures, "unigram.model"), Path.Combine(folder, "spiece.model"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"tokenizer_class": "T5Tokenizer", "extra_ids": 100, "model_max_length": 512, "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}""");
        var tokenizer = Assert.IsType<SentencePieceTokenizer>(AutoTokenizer.FromPretrained(folder));
        Assert.Equal(512, tokenizer.ModelMaxLength);
        Assert.Equal(220 + 99, tokenizer.TokenToId("<extra_id_0>"));
        foreach (var c in FirstCases().EnumerateArray())
        {
            var expected = c.GetProperty("t5_ids").EnumerateArray().Select(e => e.GetInt32());
            Assert.Equal(expected, tokenizer.Encode(c.GetProperty("text").GetString()!).Ids);
        }

        Assert.Equal(0, tokenizer.PadTokenId);
    }

    [Fact]
    public void MarianFolderLoadsSourceSpmAndVocabJson()
    {
        var folder = TestData.NewFolder("marian");
        File.Copy(Path.Combine(Fixtures, "unigram.model"), Path.Combine(folder, "source.spm"));
        File.Copy(Path.Combine(Fixtures, "unigram.model"), Path.Combine(folder, "target.spm"));
        File.Copy(Path.Combine(Fixtures, "marian_vocab.json"), Path.Combine(folder, "vocab.json"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"tokenizer_class": "MarianTokenizer", "model_max_length": 512}""");
        var tokenizer = Assert.IsType<SentencePieceTokenizer>(AutoTokenizer.FromPretrained(folder));
        Assert.True(tokenizer.UsesSeparateVocabulary);
        foreach (var c in FirstCases().EnumerateArray())
        {
            var expected = c.GetProperty("marian_ids").EnumerateArray().Select(e => e.GetInt32());
            Assert.Equal(expected, tokenizer.Encode(c.GetProperty("text").GetString()!).Ids);
        }
    }

    [Fact]
    public void WithoutTokenizerConfig_ConfigJsonModelTypeDecides()
    {
        // t5-small's layout: spiece.model next to a tokenizer.json this library does not read (Unigram), no tokenizer_config.json.
        var folder = TestData.NewFolder("t5-small-layout");
        File.Copy(Path.Combine(Fixtures, "unigram.model"), Path.Combine(folder, "spiece.model"));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "Unigram", "vocab": []}}""");
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "t5"}""");
        var tokenizer = Assert.IsType<SentencePieceTokenizer>(AutoTokenizer.FromPretrained(folder));
        Assert.Equal(FirstCases()[0].GetProperty("t5_ids").EnumerateArray().Select(e => e.GetInt32()), tokenizer.Encode(FirstCases()[0].GetProperty("text").GetString()!).Ids);
    }

    [Fact]
    public void T5ClassWithoutSpieceModelNamesTheMissingFile()
    {
        var folder = TestData.NewFolder("t5-missing");
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"tokenizer_class": "T5Tokenizer"}""");
        var e = Assert.Throws<FileNotFoundException>(() => AutoTokenizer.FromPretrained(folder));
        Assert.Contains("spiece.model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BartFolderWrapsByteLevelBpeInBosAndEos()
    {
        // GPT-2's vocab.json + merges.txt with BART's five special tokens appended.
        var folder = TestData.NewFolder("bart");
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(TestData.Gpt2FilesFolder, "vocab.json")))!;
        foreach (var special in new[] { "<s>", "<pad>", "</s>", "<unk>", "<mask>" })
        {
            vocab[special] = vocab.Count;
        }

        File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.Copy(Path.Combine(TestData.Gpt2FilesFolder, "merges.txt"), Path.Combine(folder, "merges.txt"));
        // facebook/bart-large-cnn's layout: no tokenizer_class, config.json says bart.
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"model_max_length": 1024}""");
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "bart"}""");
        var bart = AutoTokenizer.FromPretrained(folder);
        var gpt2 = AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);
        int bos = vocab["<s>"], eos = vocab["</s>"];
        foreach (var text in new[] { "Hello world", " leading space", "Straße 12345 🙂", "" })
        {
            var plain = gpt2.Encode(text).Ids;
            Assert.Equal([bos, .. plain, eos], bart.Encode(text).Ids);
            Assert.Equal(text, bart.Decode(bart.Encode(text).Ids));
        }

        var pair = bart.Encode("first", "second").Ids;
        Assert.Equal([bos, .. gpt2.Encode("first").Ids, eos, eos, .. gpt2.Encode("second").Ids, eos], pair);
        Assert.Equal(vocab["<pad>"], bart.PadTokenId);
    }
}
