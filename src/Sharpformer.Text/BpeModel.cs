using System.Text;

namespace Sharpformer.Text;

/// <summary>
/// Hugging Face's BPE model (tokenizers' <c>models/bpe</c>) over one pre-token: each character becomes its vocabulary
/// symbol (or, with <c>byte_fallback</c>, the &lt;0xXX&gt; tokens of its UTF-8 bytes; else <c>unk_token</c>, consecutive
/// unknowns fused when <c>fuse_unk</c>), then the adjacent pair of lowest merge rank is merged, leftmost first, until no
/// pair merges (<c>Word::merge_all</c>, a priority queue: O(n log n)). With <c>ignore_merges</c> a pre-token that is
/// itself in the vocabulary is one token (Llama 3).
/// </summary>
internal sealed class BpeModel
{
    private readonly Dictionary<(int Left, int Right), (int Rank, int Merged)> _merges;
    private readonly int[]? _byteIds;

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, string? unkToken, bool fuseUnk, bool byteFallback, bool ignoreMerges, string source)
    {
        Vocab = vocab;
        IdToToken = [];
        foreach (var (token, id) in vocab)
        {
            IdToToken.TryAdd(id, token);
        }

        _merges = new Dictionary<(int, int), (int, int)>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocab.TryGetValue(left, out var l) || !vocab.TryGetValue(right, out var r) || !vocab.TryGetValue(left + right, out var merged))
            {
                throw new InvalidDataException($"{source}: merge {rank} ('{left}', '{right}') names a token that is not in model.vocab; the merges must be built from the vocabulary.");
            }

            _merges.TryAdd((l, r), (rank, merged));
        }

        if (unkToken is not null)
        {
            UnkId = vocab.TryGetValue(unkToken, out var unk)
                ? unk
                : throw new InvalidDataException($"{source}: model.unk_token '{unkToken}' is not in model.vocab.");
        }

        FuseUnk = fuseUnk;
        IgnoreMerges = ignoreMerges;
        if (byteFallback)
        {
            _byteIds = new int[256];
            for (var b = 0; b < 256; b++)
            {
                _byteIds[b] = vocab.TryGetValue(ByteToken(b), out var id) ? id : -1;
            }
        }
    }

    public Dictionary<string, int> Vocab { get; }

    public Dictionary<int, string> IdToToken { get; }

    public int? UnkId { get; }

    public bool FuseUnk { get; }

    public bool IgnoreMerges { get; }

    public bool ByteFallback => _byteIds is not null;

    /// <summary>The byte-fallback token of byte <paramref name="b"/>: &lt;0x0A&gt;.</summary>
    public static string ByteToken(int b) => $"<0x{b:X2}>";

    /// <summary>Tokens of chars[from..to) as (id, first char, one past the last char).</summary>
    public List<(int Id, int Start, int End)> Encode(List<AlignedChar> chars, int from, int to)
    {
        var output = new List<(int, int, int)>();
        if (from >= to)
        {
            return output;
        }

        if (IgnoreMerges && Vocab.TryGetValue(AlignedChar.ToText(chars, from, to), out var whole))
        {
            output.Add((whole, from, to));
            return output;
        }

        // The symbols, as a doubly linked list over arrays.
        var ids = new List<int>();
        var starts = new List<int>();
        var ends = new List<int>();
        (int Id, int Start, int End)? pendingUnk = null;
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = from; i < to; i++)
        {
            var text = char.ConvertFromUtf32(chars[i].CodePoint);
            if (Vocab.TryGetValue(text, out var id))
            {
                FlushUnk();
                Add(id, i, i + 1);
                continue;
            }

            if (_byteIds is not null)
            {
                int count = new Rune(chars[i].CodePoint).EncodeToUtf8(utf8);
                var all = true;
                for (var k = 0; k < count; k++)
                {
                    all &= _byteIds[utf8[k]] >= 0;
                }

                if (all)
                {
                    FlushUnk();
                    for (var k = 0; k < count; k++)
                    {
                        Add(_byteIds[utf8[k]], i, i + 1);
                    }

                    continue;
                }
            }

            if (UnkId is { } unk)
            {
                if (pendingUnk is { } p && FuseUnk)
                {
                    pendingUnk = (p.Id, p.Start, i + 1);
                }
                else
                {
                    FlushUnk();
                    pendingUnk = (unk, i, i + 1);
                }
            }
        }

        FlushUnk();
        Merge(ids, starts, ends);
        for (var s = 0; s < ids.Count; s++)
        {
            if (ids[s] >= 0)
            {
                output.Add((ids[s], starts[s], ends[s]));
            }
        }

        return output;

        void Add(int id, int start, int end)
        {
            ids.Add(id);
            starts.Add(start);
            ends.Add(end);
        }

        void FlushUnk()
        {
            if (pendingUnk is { } p)
            {
                Add(p.Id, p.Start, p.End);
                pendingUnk = null;
            }
        }
    }

    /// <summary>Word::merge_all: merged-away symbols get id −1; the survivors keep their order.</summary>
    private void Merge(List<int> ids, List<int> starts, List<int> ends)
    {
        int n = ids.Count;
        if (n < 2 || _merges.Count == 0)
        {
            return;
        }

        var prev = new int[n];
        var next = new int[n];
        for (var i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        var queue = new PriorityQueue<(int Pos, int Merged), (int Rank, int Pos)>();
        for (var i = 0; i + 1 < n; i++)
        {
            if (_merges.TryGetValue((ids[i], ids[i + 1]), out var m))
            {
                queue.Enqueue((i, m.Merged), (m.Rank, i));
            }
        }

        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (ids[pos] < 0 || next[pos] < 0)
            {
                continue;
            }

            int right = next[pos];
            if (!_merges.TryGetValue((ids[pos], ids[right]), out var current) || current.Merged != top.Merged)
            {
                continue;
            }

            ids[pos] = top.Merged;
            ends[pos] = ends[right];
            ids[right] = -1;
            next[pos] = next[right];
            if (next[right] >= 0)
            {
                prev[next[right]] = pos;
            }

            if (prev[pos] >= 0 && _merges.TryGetValue((ids[prev[pos]], ids[pos]), out var before))
            {
                queue.Enqueue((prev[pos], before.Merged), (before.Rank, prev[pos]));
            }

            if (next[pos] >= 0 && _merges.TryGetValue((ids[pos], ids[next[pos]]), out var after))
            {
                queue.Enqueue((pos, after.Merged), (after.Rank, pos));
            }
        }
    }
}
