namespace Sharpformer.Text.Tests;

/// <summary>
/// <see cref="TextTokenizer.ConvertTokensToString"/>: HF's fast tokenizers' decoder run over token strings (what the
/// token-classification pipeline uses to spell words and entity groups).
/// </summary>
public class ConvertTokensToStringTests
{
    [Fact]
    public void WordPiece_SameAsDecodeOfTheIds_ForTokensOfTheVocabulary()
    {
        var tokenizer = AutoTokenizer.FromPretrained(TestData.BertVocabFolder);
        var encoding = tokenizer.Encode("Unaffable, is it? The heart keeps its rhythm.", options: new EncodeOptions { AddSpecialTokens = false });

        var text = tokenizer.ConvertTokensToString(encoding.Tokens);

        Assert.Equal(tokenizer.Decode(encoding.Ids), text);
        Assert.Equal("unaffable, is it? the heart keeps its rhythm.", text);
    }

    [Fact]
    public void WordPiece_KeepsStringsOutsideTheVocabulary_AndAFirstPiecesPrefix()
    {
        var tokenizer = AutoTokenizer.FromPretrained(TestData.BertVocabFolder);

        // HF's WordPiece decoder: "##" joins a token to the one before; the first token keeps it.
        Assert.Equal("Xanadu heart", tokenizer.ConvertTokensToString(["Xanadu", "heart"]));
        Assert.Equal("##soft", tokenizer.ConvertTokensToString(["##soft"]));
        Assert.Equal("microsoft", tokenizer.ConvertTokensToString(["micro", "##soft"]));
    }

    [Fact]
    public void ByteLevel_MapsSymbolsBackToBytes_RawStringsAsTheirUtf8()
    {
        var tokenizer = AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);
        var encoding = tokenizer.Encode("Hello wörld, naïve café");

        Assert.Equal("Hello wörld, naïve café", tokenizer.ConvertTokensToString(encoding.Tokens));
        // A string with a char outside the byte-to-unicode table (the space) is taken as text, as HF's decoder does.
        Assert.Equal("new yorkers", tokenizer.ConvertTokensToString(["new", " yorkers"]));
    }
}
