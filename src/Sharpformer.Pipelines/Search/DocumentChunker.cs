namespace Sharpformer.Pipelines;

/// <summary>How documents are cut into passages for <see cref="DocumentSearch"/>.</summary>
public sealed record ChunkingOptions
{
    /// <summary>
    /// Most tokens in one chunk, not counting [CLS]/[SEP] (default 128, the length all-MiniLM-L6-v2 was trained on).
    /// It is capped at the model's limit less the two special tokens.
    /// </summary>
    public int MaxTokens { get; init; } = 128;

    /// <summary>Most tokens of trailing sentences a chunk repeats from the one before it when a passage is cut mid-paragraph (default 16).</summary>
    public int OverlapTokens { get; init; } = 16;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">MaxTokens is below 8, or OverlapTokens is negative or not below half of MaxTokens.</exception>
    public void Validate()
    {
        if (MaxTokens < 8)
        {
            throw new ArgumentException($"Chunk size {MaxTokens} tokens is too small; pass at least 8 (--chunk-tokens).", nameof(MaxTokens));
        }

        if (OverlapTokens < 0 || OverlapTokens * 2 > MaxTokens)
        {
            throw new ArgumentException(
                $"Overlap {OverlapTokens} tokens must be between 0 and half the chunk size ({MaxTokens / 2}); pass a smaller --overlap-tokens.",
                nameof(OverlapTokens));
        }
    }
}

/// <summary>A chunk's place in its text: characters [Start, End) and the 1-based lines it spans (inclusive).</summary>
/// <param name="Start">First character, counted in UTF-16 code units from the start of the text.</param>
/// <param name="End">One past the last character.</param>
/// <param name="LineStart">The line of <paramref name="Start"/>, from 1.</param>
/// <param name="LineEnd">The line of the last character, from 1.</param>
public readonly record struct ChunkSpan(int Start, int End, int LineStart, int LineEnd);

/// <summary>
/// Cuts a text into passages that fit the encoder. The rule: the text is split into sentences (a sentence ends after
/// '.', '!' or '?' — with any closing quotes or brackets — followed by whitespace, and at every line break; blank lines
/// separate paragraphs). Sentences are packed greedily, in order, into chunks of at most
/// <see cref="ChunkingOptions.MaxTokens"/> tokens. A paragraph starts a new chunk when the current one already holds at
/// least half the budget (short paragraphs share a chunk, long ones do not). When a chunk is closed because the next
/// sentence does not fit, the next chunk starts with the closing sentences of this one, up to
/// <see cref="ChunkingOptions.OverlapTokens"/> tokens. A sentence longer than the budget is cut at spaces (and a word
/// longer than the budget into pieces). Every chunk is an exact slice of the text, without leading or trailing whitespace.
/// </summary>
public static class DocumentChunker
{
    private readonly record struct Piece(int Start, int End, int Tokens, bool ParagraphStart);

    /// <summary>The chunks of <paramref name="text"/>, in order.</summary>
    /// <param name="text">The document (or one JSONL record's text).</param>
    /// <param name="countTokens">Tokens of a piece of text without special tokens (for WordPiece this is additive over whitespace-separated pieces).</param>
    /// <param name="options">Chunk size and overlap.</param>
    /// <returns>The chunks' spans; none for a blank text.</returns>
    /// <exception cref="ArgumentException">The options are out of range.</exception>
    public static IReadOnlyList<ChunkSpan> Chunk(string text, Func<string, int> countTokens, ChunkingOptions options)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(countTokens);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int max = options.MaxTokens;

        var pieces = new List<Piece>();
        foreach (var (start, end, paragraphStart) in Sentences(text))
        {
            SplitToFit(text, start, end, paragraphStart, countTokens, max, pieces);
        }

        var lineStarts = LineStarts(text);
        var chunks = new List<ChunkSpan>();
        var current = new List<Piece>();
        int tokens = 0;
        foreach (var piece in pieces)
        {
            if (piece.ParagraphStart && current.Count > 0 && tokens * 2 >= max)
            {
                chunks.Add(Span(current, lineStarts));
                current.Clear();
                tokens = 0;
            }

            if (current.Count > 0 && tokens + piece.Tokens > max)
            {
                chunks.Add(Span(current, lineStarts));

                // Overlap: keep the closing sentences (never the whole chunk) within the overlap budget and room for the new piece.
                int keep = 0, kept = 0;
                for (int i = current.Count - 1; i > 0; i--)
                {
                    int next = kept + current[i].Tokens;
                    if (next > options.OverlapTokens || next + piece.Tokens > max)
                    {
                        break;
                    }

                    kept = next;
                    keep++;
                }

                current.RemoveRange(0, current.Count - keep);
                tokens = kept;
            }

            current.Add(piece);
            tokens += piece.Tokens;
        }

        if (current.Count > 0)
        {
            chunks.Add(Span(current, lineStarts));
        }

        return chunks;
    }

    /// <summary>The 1-based line of character <paramref name="index"/>, given the start offsets of every line.</summary>
    internal static int LineOf(IReadOnlyList<int> lineStarts, int index)
    {
        int lo = 0, hi = lineStarts.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (lineStarts[mid] <= index)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo + 1;
    }

    /// <summary>The offset where each line starts ('\n', '\r\n' and a lone '\r' end a line).</summary>
    internal static List<int> LineStarts(string text)
    {
        var starts = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= text.Length || text[i + 1] != '\n')))
            {
                starts.Add(i + 1);
            }
        }

        return starts;
    }

    private static ChunkSpan Span(List<Piece> pieces, List<int> lineStarts)
    {
        int start = pieces[0].Start, end = pieces[^1].End;
        return new ChunkSpan(start, end, LineOf(lineStarts, start), LineOf(lineStarts, end - 1));
    }

    /// <summary>Trimmed sentence spans, each flagged when it opens a paragraph (the first, or after a blank line).</summary>
    private static IEnumerable<(int Start, int End, bool ParagraphStart)> Sentences(string text)
    {
        bool paragraphStart = true;
        int lineBreaks = 0;
        int start = -1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (start < 0)
            {
                if (c == '\n' || (c == '\r' && (i + 1 >= text.Length || text[i + 1] != '\n')))
                {
                    lineBreaks++;
                    if (lineBreaks >= 2)
                    {
                        paragraphStart = true;
                    }
                }

                if (!char.IsWhiteSpace(c))
                {
                    start = i;
                }
                else
                {
                    continue;
                }
            }

            bool lineEnd = c is '\n' or '\r';
            bool sentenceEnd = false;
            if (c is '.' or '!' or '?')
            {
                int j = i + 1;
                while (j < text.Length && text[j] is '"' or '\'' or ')' or ']' or '”' or '’' or '»')
                {
                    j++;
                }

                if (j >= text.Length || char.IsWhiteSpace(text[j]))
                {
                    sentenceEnd = true;
                    i = j - 1;
                }
            }

            if (lineEnd || sentenceEnd)
            {
                int end = lineEnd ? i : i + 1;
                while (end > start && char.IsWhiteSpace(text[end - 1]))
                {
                    end--;
                }

                yield return (start, end, paragraphStart);
                paragraphStart = false;
                start = -1;
                lineBreaks = lineEnd && (c == '\n' || (c == '\r' && (i + 1 >= text.Length || text[i + 1] != '\n'))) ? 1 : 0;
            }
        }

        if (start >= 0)
        {
            int end = text.Length;
            while (end > start && char.IsWhiteSpace(text[end - 1]))
            {
                end--;
            }

            yield return (start, end, paragraphStart);
        }
    }

    /// <summary>Adds [start, end) as one piece, or, when it is over the budget, as word runs (and words as character runs) that fit.</summary>
    private static void SplitToFit(string text, int start, int end, bool paragraphStart, Func<string, int> countTokens, int max, List<Piece> pieces)
    {
        int tokens = countTokens(text[start..end]);
        if (tokens <= max)
        {
            pieces.Add(new Piece(start, end, tokens, paragraphStart));
            return;
        }

        // Words of the sentence, packed greedily; a word over the budget is halved until its parts fit.
        var words = new List<Piece>();
        int w = start;
        while (w < end)
        {
            while (w < end && char.IsWhiteSpace(text[w]))
            {
                w++;
            }

            int e = w;
            while (e < end && !char.IsWhiteSpace(text[e]))
            {
                e++;
            }

            if (e > w)
            {
                AddWord(text, w, e, countTokens, max, words);
            }

            w = e;
        }

        int runStart = -1, runEnd = -1, runTokens = 0;
        foreach (var word in words)
        {
            if (runStart >= 0 && runTokens + word.Tokens > max)
            {
                pieces.Add(new Piece(runStart, runEnd, runTokens, paragraphStart));
                paragraphStart = false;
                runStart = -1;
                runTokens = 0;
            }

            if (runStart < 0)
            {
                runStart = word.Start;
            }

            runEnd = word.End;
            runTokens += word.Tokens;
        }

        if (runStart >= 0)
        {
            pieces.Add(new Piece(runStart, runEnd, runTokens, paragraphStart));
        }
    }

    private static void AddWord(string text, int start, int end, Func<string, int> countTokens, int max, List<Piece> words)
    {
        int tokens = countTokens(text[start..end]);
        if (tokens <= max || end - start < 2)
        {
            words.Add(new Piece(start, end, tokens, false));
            return;
        }

        int mid = start + ((end - start) / 2);
        if (char.IsLowSurrogate(text[mid]))
        {
            mid++;
        }

        AddWord(text, start, mid, countTokens, max, words);
        AddWord(text, mid, end, countTokens, max, words);
    }
}
