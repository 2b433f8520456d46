namespace Sharpformer.Training.Data;

/// <summary>
/// Masked-LM sequences packed from whole lines of a token cache: within each document, consecutive lines are taken
/// while they fit in <see cref="MaxLength"/> tokens, and the line that does not fit starts the next sequence; a
/// document's end always ends a sequence; a line longer than <see cref="MaxLength"/> is cut into pieces of that length,
/// each its own sequence (its last piece may be shorter). Lines of a document are adjacent in the cache, so a
/// sequence is one range of ids. The plan is a function of the cache alone.
/// </summary>
internal sealed class LineSequences
{
    private readonly TokenCache _cache;
    private readonly long[] _starts;
    private readonly int[] _lengths;

    /// <summary>Plans the sequences of <paramref name="cache"/> of at most <paramref name="maxLength"/> ids (one pass over the line ends).</summary>
    public LineSequences(TokenCache cache, int maxLength)
    {
        _cache = cache;
        MaxLength = maxLength;
        var starts = new List<long>();
        var lengths = new List<int>();
        var documentEnds = cache.DocumentEnds;
        var document = 0;
        var sequenceStart = 0L;
        var sequenceEnd = 0L;
        var lineStart = 0L;

        void Flush()
        {
            if (sequenceEnd > sequenceStart)
            {
                starts.Add(sequenceStart);
                lengths.Add((int)(sequenceEnd - sequenceStart));
            }

            sequenceStart = sequenceEnd;
        }

        const int PerRead = 1 << 16;
        var lineEnds = new long[PerRead];
        for (long first = 0; first < cache.LineCount; first += PerRead)
        {
            var n = (int)Math.Min(PerRead, cache.LineCount - first);
            cache.CopyLineEnds(first, lineEnds.AsSpan(0, n));
            for (var i = 0; i < n; i++)
            {
                var lineEnd = lineEnds[i];
                if (lineEnd - lineStart > maxLength)
                {
                    // An over-long line: close what is open, then cut the line into pieces of maxLength.
                    Flush();
                    while (lineEnd - sequenceStart > maxLength)
                    {
                        sequenceEnd = sequenceStart + maxLength;
                        Flush();
                    }

                    sequenceEnd = lineEnd;
                    Flush();
                }
                else
                {
                    if (lineEnd - sequenceStart > maxLength)
                    {
                        Flush();
                    }

                    sequenceEnd = lineEnd;
                }

                if (lineEnd == documentEnds[document])
                {
                    Flush();
                    document++;
                }

                lineStart = lineEnd;
            }
        }

        _starts = [.. starts];
        _lengths = [.. lengths];
    }

    /// <summary>The most ids a sequence holds (T − 2).</summary>
    public int MaxLength { get; }

    /// <summary>Number of sequences.</summary>
    public long Count => _starts.Length;

    /// <summary>Ids in all sequences (the cache's token count).</summary>
    public long TokenCount => _cache.TokenCount;

    /// <summary>Sequence <paramref name="sequence"/>'s ids as [Start, Start + Length) of the cache.</summary>
    public (long Start, int Length) Range(long sequence) => (_starts[sequence], _lengths[sequence]);

    /// <summary>Copies sequence <paramref name="sequence"/> into the start of <paramref name="destination"/> and returns its length.</summary>
    public int Copy(long sequence, Span<int> destination)
    {
        var length = _lengths[sequence];
        _cache.CopyTokens(_starts[sequence], destination[..length]);
        return length;
    }
}
