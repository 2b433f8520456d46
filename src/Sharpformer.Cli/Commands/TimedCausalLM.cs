using System.Diagnostics;
using System.Globalization;
using Sharpformer.Models;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// Wraps a causal LM for <c>--stats</c>: every call with more than one new token per sequence counts as prefill, every
/// one-token step as decode; the report gives tokens and tokens/s of each (wall clock of the model calls only).
/// </summary>
internal sealed class TimedCausalLM(ICausalLM inner) : ICausalLM
{
    private long _prefillTokens;
    private long _decodeTokens;
    private TimeSpan _prefill;
    private TimeSpan _decode;

    public int VocabSize => inner.VocabSize;

    public int MaxPositions => inner.MaxPositions;

    public KvCache CreateCache(int batch, int capacity) => inner.CreateCache(batch, capacity);

    public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits)
    {
        var start = Stopwatch.GetTimestamp();
        inner.ForwardLast(ids, attentionMask, cache, lastLogits);
        var elapsed = Stopwatch.GetElapsedTime(start);
        if (ids.Length / cache.Batch > 1)
        {
            _prefillTokens += ids.Length;
            _prefill += elapsed;
        }
        else
        {
            _decodeTokens += ids.Length;
            _decode += elapsed;
        }
    }

    /// <summary>One line: prefill and decode tokens, milliseconds and tokens/s.</summary>
    public string Report()
    {
        static string Rate(long tokens, TimeSpan time) =>
            time > TimeSpan.Zero ? (tokens / time.TotalSeconds).ToString("F1", CultureInfo.InvariantCulture) : "-";
        var inv = CultureInfo.InvariantCulture;
        return string.Create(inv, $"prefill: {_prefillTokens} tokens in {_prefill.TotalMilliseconds:F1} ms ({Rate(_prefillTokens, _prefill)} tokens/s); decode: {_decodeTokens} tokens in {_decode.TotalMilliseconds:F1} ms ({Rate(_decodeTokens, _decode)} tokens/s)");
    }
}
