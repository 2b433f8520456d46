using System.Text;

namespace Sharpformer.Text;

/// <summary>
/// Byte-level BPE merging in O(n log n) for very long pre-tokens (a run of 10⁵ characters without spaces), where
/// Microsoft.ML.Tokenizers' merge loop grows quadratically. Same rule as HF's <c>Word::merge_all</c>: repeatedly merge
/// the adjacent pair with the lowest merge rank, leftmost first on ties; tests check it against HF and against the
/// Microsoft.ML.Tokenizers path.
/// </summary>
internal sealed class BytePairMerger
{
    private readonly Dictionary<(int Left, int Right), (int Rank, int Merged)> _merges;
    private readonly int[] _byteIds;
    private readonly Dictionary<int, string> _idToToken;

    private BytePairMerger(Dictionary<(int, int), (int, int)> merges, int[] byteIds, Dictionary<int, string> idToToken)
    {
        _merges = merges;
        _byteIds = byteIds;
        _idToToken = idToToken;
    }

    /// <summary>GPT-2's byte → printable-char table (bytes_to_unicode): printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.</summary>
    public static char[] ByteToChar { get; } = MakeByteToChar();

    /// <summary>Builds the merger, or returns null when the vocabulary lacks one of the 256 byte tokens.</summary>
    public static BytePairMerger? TryCreate(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, Dictionary<int, string> idToToken)
    {
        var byteIds = new int[256];
        for (var b = 0; b < 256; b++)
        {
            if (!vocab.TryGetValue(ByteToChar[b].ToString(), out byteIds[b]))
            {
                return null;
            }
        }

        var table = new Dictionary<(int, int), (int, int)>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            // The first occurrence of a pair wins, as when HF reads merges.
            table.TryAdd((vocab[left], vocab[right]), (rank, vocab[left + right]));
        }

        return new BytePairMerger(table, byteIds, idToToken);
    }

    /// <summary>Encodes one pre-token; offsets are UTF-16 indices into <paramref name="piece"/>.</summary>
    public List<(int Id, string Token, int Start, int End)> Encode(string piece)
    {
        var bytes = Encoding.UTF8.GetBytes(piece);
        var n = bytes.Length;

        // charOfByte[b] = UTF-16 index of the char whose UTF-8 holds byte b; charEnd[b] = one past that char.
        var charOfByte = new int[n];
        var charEnd = new int[n];
        var at = 0;
        for (var i = 0; i < piece.Length;)
        {
            var width = char.IsSurrogatePair(piece, i) ? 2 : 1;
            var count = Encoding.UTF8.GetByteCount(piece.AsSpan(i, width));
            for (var k = 0; k < count; k++)
            {
                charOfByte[at + k] = i;
                charEnd[at + k] = i + width;
            }

            at += count;
            i += width;
        }

        // Symbols as a doubly linked list over byte positions; a merged-away symbol has length 0.
        var id = new int[n];
        var length = new int[n];
        var prev = new int[n];
        var next = new int[n];
        for (var i = 0; i < n; i++)
        {
            id[i] = _byteIds[bytes[i]];
            length[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        var queue = new PriorityQueue<(int Pos, int Merged), (int Rank, int Pos)>();
        for (var i = 0; i + 1 < n; i++)
        {
            Push(queue, i, id[i], id[i + 1]);
        }

        while (queue.TryDequeue(out var top, out _))
        {
            var pos = top.Pos;
            var right = length[pos] == 0 ? -1 : next[pos];
            if (right < 0 || !_merges.TryGetValue((id[pos], id[right]), out var merge) || merge.Merged != top.Merged)
            {
                continue; // stale: one side was merged since this entry was queued
            }

            id[pos] = merge.Merged;
            length[pos] += length[right];
            length[right] = 0;
            next[pos] = next[right];
            if (next[pos] >= 0)
            {
                prev[next[pos]] = pos;
                Push(queue, pos, id[pos], id[next[pos]]);
            }

            if (prev[pos] >= 0)
            {
                Push(queue, prev[pos], id[prev[pos]], id[pos]);
            }
        }

        var output = new List<(int, string, int, int)>();
        for (var i = 0; i >= 0 && i < n; i = next[i])
        {
            output.Add((id[i], _idToToken[id[i]], charOfByte[i], charEnd[i + length[i] - 1]));
        }

        return output;
    }

    private void Push(PriorityQueue<(int, int), (int, int)> queue, int pos, int left, int right)
    {
        if (_merges.TryGetValue((left, right), out var merge))
        {
            queue.Enqueue((pos, merge.Merged), (merge.Rank, pos));
        }
    }

    private static char[] MakeByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is (>= 33 and <= 126) or (>= 161 and <= 172) or (>= 174 and <= 255);
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }
}
