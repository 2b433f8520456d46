using Sharpformer.Text;

namespace Sharpformer.Generation;

/// <summary>
/// Turns generated tokens into text pieces as soon as they are final: byte-level BPE can split one character across
/// tokens, so text ending in an incomplete UTF-8 sequence (decoded as U+FFFD) is held back until the rest arrives; text
/// that could be the start of a stop sequence is held back until it is known not to be one. When a stop sequence
/// appears, everything from it on is dropped and <see cref="Stopped"/> becomes true.
/// </summary>
public sealed class StreamingDetokenizer
{
    private readonly TextTokenizer _tokenizer;
    private readonly IReadOnlyList<string> _stopSequences;
    private readonly List<int> _tokens = [];
    private string _text = "";
    private int _emitted;

    /// <summary>Creates a detokenizer for one sequence.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="stopSequences">Texts that end the output (may be empty).</param>
    public StreamingDetokenizer(TextTokenizer tokenizer, IReadOnlyList<string>? stopSequences = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _stopSequences = stopSequences ?? [];
    }

    /// <summary>True once a stop sequence appeared; later tokens are ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The output text so far: everything decoded, cut before a stop sequence once one appeared.</summary>
    public string Text => _text;

    /// <summary>Adds one token; returns the text that became final (possibly empty).</summary>
    /// <param name="token">The generated token id.</param>
    /// <returns>The new piece of text.</returns>
    public string Push(int token)
    {
        if (Stopped)
        {
            return "";
        }

        _tokens.Add(token);
        _text = _tokenizer.Decode(_tokens);
        int stopAt = FirstStop(_text);
        if (stopAt >= 0)
        {
            Stopped = true;
            _text = _text[..stopAt];
            return TakeUpTo(_text.Length);
        }

        int safe = _text.Length;
        while (safe > _emitted && _text[safe - 1] == '\uFFFD')
        {
            safe--;
        }

        safe -= HeldForStop(_text.AsSpan(0, safe));
        return TakeUpTo(safe);
    }

    /// <summary>At the end of generation: returns whatever is still held back (an incomplete character decodes as U+FFFD, as HF's decode does).</summary>
    /// <returns>The rest of the text.</returns>
    public string Flush() => TakeUpTo(_text.Length);

    private string TakeUpTo(int end)
    {
        if (end <= _emitted)
        {
            return "";
        }

        string piece = _text[_emitted..end];
        _emitted = end;
        return piece;
    }

    private int FirstStop(string text)
    {
        int first = -1;
        // Only text not yet emitted, plus a stop sequence's length before it, can hold a new match.
        foreach (var stop in _stopSequences)
        {
            int from = Math.Max(0, _emitted - stop.Length);
            int at = text.IndexOf(stop, from, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first))
            {
                first = at;
            }
        }

        return first;
    }

    /// <summary>Length of the longest suffix of <paramref name="text"/> (not yet emitted) that begins some stop sequence.</summary>
    private int HeldForStop(ReadOnlySpan<char> text)
    {
        int held = 0;
        foreach (var stop in _stopSequences)
        {
            for (int n = Math.Min(stop.Length - 1, text.Length - _emitted); n > held; n--)
            {
                if (text[^n..].SequenceEqual(stop.AsSpan(0, n)))
                {
                    held = n;
                    break;
                }
            }
        }

        return held;
    }
}
