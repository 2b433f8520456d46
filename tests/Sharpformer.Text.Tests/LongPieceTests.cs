using System.Text;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace Sharpformer.Text.Tests;

/// <summary>The O(n log n) merger used for very long pre-tokens gives the same tokens as Microsoft.ML.Tokenizers and HF.</summary>
public class LongPieceTests
{
    [Fact]
    public void Encode_CorpusThroughLongPieceMerger_SameAsMlTokenizersPath()
    {
        var reference = (ByteLevelBpeTokenizer)AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);
        var merger = (ByteLevelBpeTokenizer)AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);
        merger.LongPieceThreshold = 0;

        foreach (var text in TestData.Corpus)
        {
            var expected = reference.Encode(text);
            var actual = merger.Encode(text);
            Assert.Equal(expected.Ids, actual.Ids);
            Assert.Equal(expected.Offsets, actual.Offsets);
        }
    }

    [Fact]
    public void Encode_LongRunsWithoutSpaces_SameIdsAsHuggingFace()
    {
        var oracle = new HfTokenizer(Path.Combine(TestData.Gpt2TokenizerJsonFolder, "tokenizer.json"));
        var ours = AutoTokenizer.FromPretrained(TestData.Gpt2FilesFolder);
        var random = new Random(7);
        var letters = "abcdefghijklmnopqrstuvwxyzéüßçñ";
        var inputs = new List<string> { new('a', 5000), new('^', 3000), string.Concat(Enumerable.Repeat("ab", 1500)), string.Concat(Enumerable.Repeat("中文", 800)) };
        for (var n = 0; n < 5; n++)
        {
            var b = new StringBuilder();
            for (var i = 0; i < 2000; i++)
            {
                b.Append(letters[random.Next(letters.Length)]);
            }

            inputs.Add(b.ToString());
        }

        foreach (var text in inputs)
        {
            Assert.True(text.Length > ByteLevelBpeTokenizer.DefaultLongPieceThreshold);
            Assert.Equal(oracle.Encode(text).Select(i => (int)i), ours.Encode(text).Ids);
        }
    }
}
