namespace Sharpformer.Text.Tests;

public class AutoTokenizerTests
{
    [Fact]
    public void FromPretrained_EmptyFolder_ListsWhatWasLookedFor()
    {
        var folder = TestData.NewFolder("empty");

        var error = Assert.Throws<FileNotFoundException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
        Assert.Contains("vocab.txt", error.Message, StringComparison.Ordinal);
        Assert.Contains("merges.txt", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_MissingFolder_Throws()
    {
        Assert.Throws<DirectoryNotFoundException>(() => AutoTokenizer.FromPretrained(Path.Combine(Path.GetTempPath(), "no-such-" + Guid.NewGuid())));
    }

    [Fact]
    public void FromPretrained_VocabTxtFolder_IsBert()
    {
        Assert.IsType<BertWordPieceTokenizer>(AutoTokenizer.FromPretrained(TestData.BertVocabFolder));
        Assert.IsType<ByteLevelBpeTokenizer>(AutoTokenizer.FromPretrained(TestData.Gpt2LegacyJsonFolder));
    }

    [Fact]
    public void FromPretrained_MalformedTokenizerJson_NamesTheFile()
    {
        var folder = TestData.NewFolder("bad-json");
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), "{ \"model\": { \"type\": \"BPE\", ");

        var error = Assert.Throws<InvalidDataException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
        Assert.Contains("not valid JSON", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_MergeWithUnknownToken_NamesTheMerge()
    {
        var folder = TestData.NewFolder("bad-merges");
        File.WriteAllText(Path.Combine(folder, "vocab.json"), """{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}""");
        File.WriteAllLines(Path.Combine(folder, "merges.txt"), ["#version: 0.2", "a b", "ab c"]);

        var error = Assert.Throws<InvalidDataException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("merge 2", error.Message, StringComparison.Ordinal);
        Assert.Contains("'c'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_MalformedMergeLine_NamesTheLine()
    {
        var folder = TestData.NewFolder("bad-merge-line");
        File.WriteAllText(Path.Combine(folder, "vocab.json"), """{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}""");
        File.WriteAllLines(Path.Combine(folder, "merges.txt"), ["#version: 0.2", "a b c"]);

        var error = Assert.Throws<InvalidDataException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("line 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_NegativeVocabId_Rejected()
    {
        var folder = TestData.NewFolder("bad-vocab");
        File.WriteAllText(Path.Combine(folder, "vocab.json"), """{"a": -4}""");
        File.WriteAllLines(Path.Combine(folder, "merges.txt"), ["#version: 0.2"]);

        var error = Assert.Throws<InvalidDataException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("'a'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_WordPieceIdsWithGap_Rejected()
    {
        var folder = TestData.NewFolder("gap");
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 5}}}""");

        var error = Assert.Throws<InvalidDataException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("WordPiece ids", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_UnigramModel_NotSupportedWithClearMessage()
    {
        var folder = TestData.NewFolder("unigram");
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "Unigram", "vocab": {"a": 0}}}""");

        var error = Assert.Throws<NotSupportedException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("Unigram", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_MissingSpecialToken_NamesIt()
    {
        var folder = TestData.NewFolder("no-mask");
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"]);

        var error = Assert.Throws<InvalidDataException>(() => AutoTokenizer.FromPretrained(folder));

        Assert.Contains("[MASK]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrained_TokenizerConfig_SettingsAndAddedTokensApplied()
    {
        var folder = TestData.NewFolder("config");
        File.Copy(Path.Combine(TestData.BertVocabFolder, "vocab.txt"), Path.Combine(folder, "vocab.txt"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """
            {
              "tokenizer_class": "BertTokenizer",
              "do_lower_case": false,
              "model_max_length": 8,
              "mask_token": {"content": "[MASK]", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
              "added_tokens_decoder": {
                "30522": {"content": "<ent>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": false}
              }
            }
            """);

        var tokenizer = AutoTokenizer.FromPretrained(folder);
        var encoding = tokenizer.Encode("Paris<ent> [MASK]");

        Assert.Equal(8, tokenizer.ModelMaxLength);
        Assert.Contains(30522, encoding.Ids);
        Assert.Contains(103, encoding.Ids);
        Assert.False(((BertWordPieceTokenizer)tokenizer).Normalizer.Lowercase);
        Assert.Equal(["[UNK]"], tokenizer.Tokenize("Paris")); // cased input against an uncased vocabulary
        Assert.Equal("paris <ent>", tokenizer.Decode(tokenizer.Encode("paris<ent>").Ids));
        Assert.Equal(8, tokenizer.Encode("a b c d e f g h i j k", options: new EncodeOptions { Truncation = true }).Count);
    }

    [Fact]
    public void FromPretrained_SpecialTokensMap_SetsPadForGpt2()
    {
        var folder = TestData.NewFolder("gpt2-pad");
        File.Copy(Path.Combine(TestData.Gpt2FilesFolder, "vocab.json"), Path.Combine(folder, "vocab.json"));
        File.Copy(Path.Combine(TestData.Gpt2FilesFolder, "merges.txt"), Path.Combine(folder, "merges.txt"));
        File.WriteAllText(Path.Combine(folder, "special_tokens_map.json"), """{"pad_token": "<|endoftext|>"}""");

        var tokenizer = AutoTokenizer.FromPretrained(folder);
        var batch = tokenizer.EncodeBatch(["Hello", "Hello world"], options: new EncodeOptions { Padding = PaddingStrategy.Longest, PaddingSide = PaddingSide.Left });

        Assert.Equal([50256, 15496], batch[0].Ids);
        Assert.Equal([0, 1], batch[0].AttentionMask);
    }

    [Fact]
    public void FromPretrained_AddPrefixSpace_EncodesLikeLeadingSpace()
    {
        var folder = TestData.NewFolder("prefix");
        File.Copy(Path.Combine(TestData.Gpt2FilesFolder, "vocab.json"), Path.Combine(folder, "vocab.json"));
        File.Copy(Path.Combine(TestData.Gpt2FilesFolder, "merges.txt"), Path.Combine(folder, "merges.txt"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"add_prefix_space": true}""");

        var tokenizer = AutoTokenizer.FromPretrained(folder);
        var encoding = tokenizer.Encode("world");

        Assert.Equal([995], encoding.Ids);
        Assert.Equal(new TextSpan(0, 5), encoding.Offsets[0]);
    }
}
