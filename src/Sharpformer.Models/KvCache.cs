using Sharpformer.Tensors;
using Sharpformer.Tensors.Storage;
using Convert = Sharpformer.Tensors.Kernels.Convert;

namespace Sharpformer.Models;

/// <summary>
/// Keys and values of every layer for B sequences, preallocated to a fixed capacity so decoding never reallocates.
/// Each layer holds K and V as [B, Tmax, H·D] (the layout the attention kernel reads as a strided [B, H, T, D] view),
/// plus a key mask [B, Tmax] (1 = token, 0 = left padding), the next position id and the length of each sequence.
/// Two ways to fill it: in lockstep (<see cref="Advance"/>: every sequence grows by T, left padding aligns them — what
/// generate and beam search use), or as independent slots (<see cref="AdvanceSequence"/> / <see cref="ResetSequence"/>:
/// each sequence is claimed, grows and is freed on its own — what a continuously batching server uses).
/// K and V are stored in F32 or, as llama.cpp does by default, in F16 (<see cref="ElementType"/>, chosen at
/// construction): half the bytes, which a decoding step streams on top of the weights. F16 rows are written by
/// <see cref="WriteRow"/> rounded to nearest even, with subnormals flushed to signed zero and overflow saturated to
/// ±65504 (<see cref="Convert.F32ToF16Cache"/>), the form the F16 attention kernels read fastest.
/// </summary>
public sealed class KvCache
{
    // Views of one 64-byte-aligned buffer for all layers (AlignedBuffer), so it spans 2 MiB huge pages where the OS allows:
    // a decode step reads every layer's K and V after streaming the weights, and with 4 KiB pages each layer's strided
    // per-head reads took a page walk per page (GPT-2 124M, T ≈ 160: attention 345 µs per token, about twice its time on
    // warm page tables).
    private ArraySegment<float>[] _keys = [];
    private ArraySegment<float>[] _values = [];
    private ArraySegment<Half>[] _keysHalf = [];
    private ArraySegment<Half>[] _valuesHalf = [];
    private readonly float[] _mask;
    private readonly int[] _nextPosition;
    private readonly int[] _lengths;

    /// <summary>Allocates an empty cache.</summary>
    /// <param name="layers">Number of layers.</param>
    /// <param name="batch">B.</param>
    /// <param name="capacity">Tmax, the most tokens per sequence.</param>
    /// <param name="width">H·D, the width of one key or value row.</param>
    /// <param name="elementType">How K and V are stored: <see cref="DType.F32"/> (the default) or <see cref="DType.F16"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive, or the element type is neither F32 nor F16.</exception>
    public KvCache(int layers, int batch, int capacity, int width, DType elementType = DType.F32)
    {
        if (elementType is not (DType.F32 or DType.F16))
        {
            throw new ArgumentOutOfRangeException(nameof(elementType), elementType, "KvCache: K and V are stored in F32 or F16.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        Layers = layers;
        Batch = batch;
        Capacity = capacity;
        Width = width;
        ElementType = elementType;
        if (elementType == DType.F16)
        {
            (_keysHalf, _valuesHalf) = Allocate<Half>(layers, checked(batch * capacity * width));
        }
        else
        {
            (_keys, _values) = Allocate<float>(layers, checked(batch * capacity * width));
        }

        _mask = new float[batch * capacity];
        _nextPosition = new int[batch];
        _lengths = new int[batch];
    }

    /// <summary>Number of layers.</summary>
    public int Layers { get; }

    /// <summary>B, the number of sequences.</summary>
    public int Batch { get; }

    /// <summary>Tmax, the most tokens (padding included) each sequence can hold.</summary>
    public int Capacity { get; }

    /// <summary>H·D, the width of a key or value row.</summary>
    public int Width { get; }

    /// <summary>How K and V are stored: <see cref="DType.F32"/> (<see cref="Keys"/>, <see cref="Values"/>) or <see cref="DType.F16"/> (<see cref="KeysHalf"/>, <see cref="ValuesHalf"/>).</summary>
    public DType ElementType { get; }

    /// <summary>Bytes of K and V storage (every layer, the whole capacity).</summary>
    public long Bytes => 2L * Layers * Batch * Capacity * Width * (ElementType == DType.F16 ? sizeof(ushort) : sizeof(float));

    /// <summary>Tokens (padding included) stored per sequence so far: the longest sequence's length (in lockstep, every sequence's).</summary>
    public int Length { get; private set; }

    /// <summary>Tokens (padding included) stored for sequence <paramref name="sequence"/>.</summary>
    /// <param name="sequence">Index in the batch (the slot).</param>
    /// <returns>Its length; its keys and values occupy rows [0, length).</returns>
    public int SequenceLength(int sequence) => _lengths[sequence];

    /// <summary>Keys of layer <paramref name="layer"/>, [B, Tmax, H·D], of an F32 cache.</summary>
    /// <param name="layer">Layer index.</param>
    /// <returns>The whole buffer; rows at or past <see cref="Length"/> are stale.</returns>
    /// <exception cref="InvalidOperationException">The cache stores F16 (read <see cref="KeysHalf"/>).</exception>
    public Span<float> Keys(int layer) => ElementType == DType.F32 ? _keys[layer] : throw WrongType("Keys", "KeysHalf");

    /// <summary>Values of layer <paramref name="layer"/>, [B, Tmax, H·D], of an F32 cache.</summary>
    /// <param name="layer">Layer index.</param>
    /// <returns>The whole buffer; rows at or past <see cref="Length"/> are stale.</returns>
    /// <exception cref="InvalidOperationException">The cache stores F16 (read <see cref="ValuesHalf"/>).</exception>
    public Span<float> Values(int layer) => ElementType == DType.F32 ? _values[layer] : throw WrongType("Values", "ValuesHalf");

    /// <summary>Keys of layer <paramref name="layer"/>, [B, Tmax, H·D], of an F16 cache.</summary>
    /// <param name="layer">Layer index.</param>
    /// <returns>The whole buffer; rows at or past <see cref="Length"/> are stale.</returns>
    /// <exception cref="InvalidOperationException">The cache stores F32 (read <see cref="Keys"/>).</exception>
    public Span<Half> KeysHalf(int layer) => ElementType == DType.F16 ? _keysHalf[layer] : throw WrongType("KeysHalf", "Keys");

    /// <summary>Values of layer <paramref name="layer"/>, [B, Tmax, H·D], of an F16 cache.</summary>
    /// <param name="layer">Layer index.</param>
    /// <returns>The whole buffer; rows at or past <see cref="Length"/> are stale.</returns>
    /// <exception cref="InvalidOperationException">The cache stores F32 (read <see cref="Values"/>).</exception>
    public Span<Half> ValuesHalf(int layer) => ElementType == DType.F16 ? _valuesHalf[layer] : throw WrongType("ValuesHalf", "Values");

    /// <summary>
    /// Stores one token's key and value rows of layer <paramref name="layer"/> at row <paramref name="position"/> of
    /// sequence <paramref name="sequence"/>: copied into an F32 cache, rounded by <see cref="Convert.F32ToF16Cache"/>
    /// into an F16 one.
    /// </summary>
    /// <param name="layer">Layer index.</param>
    /// <param name="sequence">Index in the batch.</param>
    /// <param name="position">Row in [0, Tmax).</param>
    /// <param name="key">[H·D].</param>
    /// <param name="value">[H·D].</param>
    public void WriteRow(int layer, int sequence, int position, ReadOnlySpan<float> key, ReadOnlySpan<float> value)
    {
        int offset = checked(((sequence * Capacity) + position) * Width);
        if (ElementType == DType.F16)
        {
            Convert.F32ToF16Cache(key[..Width], _keysHalf[layer].AsSpan(offset, Width));
            Convert.F32ToF16Cache(value[..Width], _valuesHalf[layer].AsSpan(offset, Width));
        }
        else
        {
            key[..Width].CopyTo(_keys[layer].AsSpan(offset, Width));
            value[..Width].CopyTo(_values[layer].AsSpan(offset, Width));
        }
    }

    /// <summary>The key mask [B, Tmax]: 1 = token, 0 = padding.</summary>
    public ReadOnlySpan<float> Mask => _mask;

    /// <summary>The position id the next real token of sequence <paramref name="sequence"/> gets (its count of real tokens).</summary>
    /// <param name="sequence">Index in the batch.</param>
    /// <returns>The position id.</returns>
    public int NextPosition(int sequence) => _nextPosition[sequence];

    /// <summary>Forgets every token so the cache can serve new sequences.</summary>
    public void Clear()
    {
        Length = 0;
        Array.Clear(_mask);
        Array.Clear(_nextPosition);
        Array.Clear(_lengths);
    }

    /// <summary>Frees slot <paramref name="sequence"/>: its length, mask and position count return to 0; the other sequences keep theirs.</summary>
    /// <param name="sequence">Index in the batch.</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside [0, B).</exception>
    public void ResetSequence(int sequence)
    {
        CheckSequence(sequence);
        Array.Clear(_mask, sequence * Capacity, Capacity);
        _nextPosition[sequence] = 0;
        _lengths[sequence] = 0;
        Length = MaxLength();
    }

    /// <summary>
    /// Claims T new rows for sequence <paramref name="sequence"/> alone (slot use: a model calls this, then writes its
    /// K/V into rows [old length, old length + T) of that sequence): marks them as tokens and writes their position ids
    /// (continuing the sequence's count).
    /// </summary>
    /// <param name="sequence">Index in the batch.</param>
    /// <param name="tokens">T ≥ 1.</param>
    /// <param name="positions">[T] receives the position ids.</param>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside [0, B).</exception>
    /// <exception cref="ArgumentException">The sequence would exceed the capacity, or <paramref name="positions"/> holds fewer than T values.</exception>
    public void AdvanceSequence(int sequence, int tokens, Span<int> positions)
    {
        CheckSequence(sequence);
        int length = _lengths[sequence];
        if (tokens <= 0 || length + tokens > Capacity)
        {
            throw new ArgumentException($"KvCache: sequence {sequence} holds {length} tokens; {tokens} more would exceed its capacity of {Capacity} (pass T ≥ 1, or free the slot with ResetSequence).", nameof(tokens));
        }

        if (positions.Length < tokens)
        {
            throw new ArgumentException($"KvCache.AdvanceSequence: positions holds {positions.Length} values, T={tokens} needed.", nameof(positions));
        }

        for (int t = 0; t < tokens; t++)
        {
            _mask[sequence * Capacity + length + t] = 1f;
            positions[t] = _nextPosition[sequence]++;
        }

        _lengths[sequence] = length + tokens;
        Length = Math.Max(Length, length + tokens);
    }

    /// <summary>
    /// Rearranges the sequences: new sequence i becomes a copy of old sequence <paramref name="sources"/>[i]
    /// (beam search keeps the best beams and drops the rest).
    /// </summary>
    /// <param name="sources">[B] old indices, each in [0, B).</param>
    /// <exception cref="ArgumentException">The index count is not B or an index is out of range.</exception>
    public void Reorder(ReadOnlySpan<int> sources)
    {
        if (sources.Length != Batch)
        {
            throw new ArgumentException($"KvCache.Reorder: got {sources.Length} indices for a cache of B={Batch} sequences; pass one source index per sequence.", nameof(sources));
        }

        foreach (int s in sources)
        {
            if ((uint)s >= (uint)Batch)
            {
                throw new ArgumentException($"KvCache.Reorder: index {s} is outside [0, {Batch}).", nameof(sources));
            }
        }

        int rowBlock = Capacity * Width;
        int used = Length * Width;
        if (ElementType == DType.F16)
        {
            (_keysHalf, _valuesHalf) = Gathered(_keysHalf, _valuesHalf, sources, rowBlock, used);
        }
        else
        {
            (_keys, _values) = Gathered(_keys, _values, sources, rowBlock, used);
        }

        var mask = (float[])_mask.Clone();
        var next = (int[])_nextPosition.Clone();
        var lengths = (int[])_lengths.Clone();
        for (int b = 0; b < Batch; b++)
        {
            Array.Copy(mask, sources[b] * Capacity, _mask, b * Capacity, Capacity);
            _nextPosition[b] = next[sources[b]];
            _lengths[b] = lengths[sources[b]];
        }

        Length = MaxLength();
    }

    /// <summary>
    /// Claims T new rows per sequence (a model calls this once per forward, then writes K/V into rows
    /// [old Length, old Length + T)): records their mask bits, writes their position ids [B, T] (HF generate:
    /// cumsum(mask) − 1 over real tokens, 1 at padding) and advances <see cref="Length"/> by T.
    /// </summary>
    /// <param name="attentionMask">Empty (all tokens) or [B, T]: 1 = token, 0 = left padding.</param>
    /// <param name="tokens">T.</param>
    /// <param name="positions">[B, T] receives the position ids.</param>
    /// <exception cref="ArgumentException">The cache is too small, or a span does not hold [B, T] values.</exception>
    /// <exception cref="InvalidOperationException">The sequences have different lengths (the cache is in slot use: call <see cref="AdvanceSequence"/>).</exception>
    public void Advance(ReadOnlySpan<float> attentionMask, int tokens, Span<int> positions)
    {
        foreach (int length in _lengths)
        {
            if (length != Length)
            {
                throw new InvalidOperationException($"KvCache.Advance: the sequences have different lengths (slots filled with AdvanceSequence, longest {Length}); advance them one by one with AdvanceSequence, or Clear the cache first.");
            }
        }

        if (tokens < 0 || Length + tokens > Capacity)
        {
            throw new ArgumentException($"KvCache: {Length} cached + {tokens} new tokens exceed its capacity of {Capacity}; allocate a larger cache.", nameof(tokens));
        }

        if ((!attentionMask.IsEmpty && attentionMask.Length != Batch * tokens) || positions.Length < Batch * tokens)
        {
            throw new ArgumentException($"KvCache.Advance: the mask ({attentionMask.Length}) and positions ({positions.Length}) must hold [B={Batch}, T={tokens}] values.", nameof(attentionMask));
        }

        for (int b = 0; b < Batch; b++)
        {
            for (int t = 0; t < tokens; t++)
            {
                float m = attentionMask.IsEmpty ? 1f : attentionMask[b * tokens + t];
                _mask[b * Capacity + Length + t] = m;
                positions[b * tokens + t] = m != 0f ? _nextPosition[b]++ : 1;
            }
        }

        Length += tokens;
        Array.Fill(_lengths, Length);
    }

    private void CheckSequence(int sequence)
    {
        if ((uint)sequence >= (uint)Batch)
        {
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"KvCache: sequence index must be in [0, {Batch}).");
        }
    }

    private int MaxLength()
    {
        int max = 0;
        foreach (int length in _lengths)
        {
            max = Math.Max(max, length);
        }

        return max;
    }

    private static InvalidOperationException WrongType(string member, string other) =>
        new($"KvCache.{member}: this cache stores the other element type; read {other}, or create the cache with the element type you read.");

    /// <summary>New K and V blocks of every layer: new sequence b a copy of old sequence sources[b]'s first <paramref name="used"/> values.</summary>
    private (ArraySegment<T>[] Keys, ArraySegment<T>[] Values) Gathered<T>(ArraySegment<T>[] oldKeys, ArraySegment<T>[] oldValues, ReadOnlySpan<int> sources, int rowBlock, int used)
        where T : unmanaged
    {
        var (keys, values) = Allocate<T>(Layers, Batch * rowBlock);
        for (int l = 0; l < Layers; l++)
        {
            Gather(oldKeys[l], keys[l], sources, rowBlock, used);
            Gather(oldValues[l], values[l], sources, rowBlock, used);
        }

        return (keys, values);
    }

    private static void Gather<T>(ArraySegment<T> source, ArraySegment<T> destination, ReadOnlySpan<int> sources, int rowBlock, int used)
    {
        for (int b = 0; b < sources.Length; b++)
        {
            source.AsSpan(sources[b] * rowBlock, used).CopyTo(destination.AsSpan(b * rowBlock, used));
        }
    }

    /// <summary>
    /// Zeroed K and V blocks of <paramref name="block"/> elements for every layer: views of one aligned buffer, or one
    /// buffer per block when the whole would exceed an array's length.
    /// </summary>
    private static (ArraySegment<T>[] Keys, ArraySegment<T>[] Values) Allocate<T>(int layers, int block)
        where T : unmanaged
    {
        var keys = new ArraySegment<T>[layers];
        var values = new ArraySegment<T>[layers];
        bool shared = 2L * layers * block <= Array.MaxLength - AlignedBuffer.Alignment;
        var whole = shared ? AlignedBuffer.Allocate<T>(2 * layers * block) : default;
        for (int l = 0; l < layers; l++)
        {
            keys[l] = shared ? whole.Slice(2 * l * block, block) : AlignedBuffer.Allocate<T>(block);
            values[l] = shared ? whole.Slice((2 * l + 1) * block, block) : AlignedBuffer.Allocate<T>(block);
            keys[l].AsSpan().Clear();
            values[l].AsSpan().Clear();
        }

        return (keys, values);
    }
}
