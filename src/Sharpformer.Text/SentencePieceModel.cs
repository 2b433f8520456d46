using System.Text;

namespace Sharpformer.Text;

/// <summary>The kinds of piece a SentencePiece model holds (sentencepiece_model.proto <c>SentencePiece.Type</c>).</summary>
internal enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>One piece of a SentencePiece model: its text, score and kind.</summary>
internal readonly record struct Piece(string Text, float Score, PieceType Type);

/// <summary>
/// A SentencePiece model read from its serialized ModelProto (a .model / .spm file) and run exactly as the C++ library
/// does: the normalizer (precompiled charsmap over UTF-8, whitespace rules, the ▁ dummy prefix), then Unigram Viterbi or
/// BPE merges by score, unknown runs merged and, with byte_fallback, unknown characters spelled as &lt;0xNN&gt; pieces.
/// Written here because Microsoft.ML.Tokenizers (2.0.1 and 3.0.0) differs from sentencepiece: it ignores the
/// precompiled charsmap (tabs, NFKC), keeps whitespace-only input, and cannot load a Unigram model without a bos piece
/// (T5's layout).
/// </summary>
internal sealed class SentencePieceModel
{
    /// <summary>Penalty below the lowest piece score given to an unknown character (sentencepiece's kUnkPenalty).</summary>
    private const float UnknownPenalty = 10f;

    private readonly Dictionary<string, int> _pieceIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _matchable = new(StringComparer.Ordinal);
    private readonly List<string> _userDefined = [];
    private readonly CharsMap? _charsMap;
    private readonly float _minScore;
    private readonly float _maxScore;
    private readonly int _maxPieceLength;

    private SentencePieceModel(List<Piece> pieces, bool isBpe, int unkId, bool byteFallback, bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces, bool whitespaceAsSuffix, CharsMap? charsMap, string unknownSurface)
    {
        Pieces = pieces;
        IsBpe = isBpe;
        UnknownId = unkId;
        ByteFallback = byteFallback;
        AddDummyPrefix = addDummyPrefix;
        RemoveExtraWhitespaces = removeExtraWhitespaces;
        EscapeWhitespaces = escapeWhitespaces;
        WhitespaceAsSuffix = whitespaceAsSuffix;
        UnknownSurface = unknownSurface;
        _charsMap = charsMap;
        _minScore = float.MaxValue;
        _maxScore = float.MinValue;
        for (var id = 0; id < pieces.Count; id++)
        {
            var piece = pieces[id];
            _pieceIds.TryAdd(piece.Text, id);
            if (piece.Type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused)
            {
                _matchable.TryAdd(piece.Text, id);
                _maxPieceLength = Math.Max(_maxPieceLength, piece.Text.Length);
            }

            if (piece.Type == PieceType.UserDefined)
            {
                _userDefined.Add(piece.Text);
            }

            if (piece.Type == PieceType.Normal)
            {
                _minScore = Math.Min(_minScore, piece.Score);
                _maxScore = Math.Max(_maxScore, piece.Score);
            }
        }

        _userDefined.Sort((a, b) => b.Length.CompareTo(a.Length));
    }

    /// <summary>The pieces, indexed by id.</summary>
    public IReadOnlyList<Piece> Pieces { get; }

    /// <summary>BPE (true) or Unigram (false).</summary>
    public bool IsBpe { get; }

    /// <summary>The id of the unknown piece.</summary>
    public int UnknownId { get; }

    /// <summary>Unknown characters are spelled as UTF-8 byte pieces (&lt;0x41&gt;).</summary>
    public bool ByteFallback { get; }

    /// <summary>Normalizer: prepend ▁ to non-empty text.</summary>
    public bool AddDummyPrefix { get; }

    /// <summary>Normalizer: drop leading/trailing whitespace and collapse runs.</summary>
    public bool RemoveExtraWhitespaces { get; }

    /// <summary>Normalizer: spaces become ▁.</summary>
    public bool EscapeWhitespaces { get; }

    /// <summary>The ▁ goes after words instead of before them.</summary>
    public bool WhitespaceAsSuffix { get; }

    /// <summary>What decoding writes for an unknown piece (" ⁇ " by default).</summary>
    public string UnknownSurface { get; }

    /// <summary>The id of <paramref name="piece"/>, or null.</summary>
    public int? PieceToId(string piece) => _pieceIds.TryGetValue(piece, out var id) ? id : null;

    /// <summary>Reads a serialized ModelProto.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a SentencePiece model this reader supports.</exception>
    public static SentencePieceModel Read(byte[] bytes, string source)
    {
        var pieces = new List<Piece>();
        var modelType = 1;
        int unkId = 0;
        var byteFallback = false;
        var whitespaceAsSuffix = false;
        var unknownSurface = " \u2047 ";
        var addDummyPrefix = true;
        var removeExtra = true;
        var escape = true;
        byte[]? charsMap = null;
        try
        {
            var reader = new ProtoReader(bytes, 0, bytes.Length);
            while (reader.Next(out var field, out var wire))
            {
                switch (field)
                {
                    case 1 when wire == 2:
                        pieces.Add(ReadPiece(reader.Bytes(), source));
                        break;
                    case 2 when wire == 2:
                        {
                            var (start, length) = reader.Span();
                            var trainer = new ProtoReader(bytes, start, length);
                            while (trainer.Next(out var f, out var w))
                            {
                                switch (f)
                                {
                                    case 3 when w == 0: modelType = (int)trainer.Varint(); break;
                                    case 40 when w == 0: unkId = (int)trainer.Varint(); break;
                                    case 35 when w == 0: byteFallback = trainer.Varint() != 0; break;
                                    case 24 when w == 0: whitespaceAsSuffix = trainer.Varint() != 0; break;
                                    case 44 when w == 2: unknownSurface = Encoding.UTF8.GetString(trainer.Bytes()); break;
                                    default: trainer.Skip(w); break;
                                }
                            }

                            break;
                        }

                    case 3 when wire == 2:
                        {
                            var (start, length) = reader.Span();
                            var normalizer = new ProtoReader(bytes, start, length);
                            while (normalizer.Next(out var f, out var w))
                            {
                                switch (f)
                                {
                                    case 2 when w == 2: charsMap = normalizer.Bytes(); break;
                                    case 3 when w == 0: addDummyPrefix = normalizer.Varint() != 0; break;
                                    case 4 when w == 0: removeExtra = normalizer.Varint() != 0; break;
                                    case 5 when w == 0: escape = normalizer.Varint() != 0; break;
                                    default: normalizer.Skip(w); break;
                                }
                            }

                            break;
                        }

                    default:
                        reader.Skip(wire);
                        break;
                }
            }
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidDataException or OverflowException)
        {
            throw new InvalidDataException($"{source}: truncated or malformed protobuf ({e.Message}); this is not a SentencePiece model.", e);
        }

        if (pieces.Count == 0)
        {
            throw new InvalidDataException($"{source}: no pieces; this is not a SentencePiece model.");
        }

        if (modelType is not (1 or 2))
        {
            throw new InvalidDataException($"{source}: SentencePiece model type {(modelType == 3 ? "WORD" : modelType == 4 ? "CHAR" : modelType.ToString(System.Globalization.CultureInfo.InvariantCulture))} is not supported; only Unigram and BPE models are.");
        }

        if (unkId < 0 || unkId >= pieces.Count || pieces[unkId].Type != PieceType.Unknown)
        {
            throw new InvalidDataException($"{source}: unk_id {unkId} is not an unknown piece; the model file is damaged.");
        }

        return new SentencePieceModel(pieces, modelType == 2, unkId, byteFallback, addDummyPrefix, removeExtra, escape, whitespaceAsSuffix, charsMap is { Length: > 0 } ? CharsMap.Read(charsMap, source) : null, unknownSurface);
    }

    /// <summary>
    /// Normalizes <paramref name="text"/> and splits it into pieces, as SentencePieceProcessor.Encode: each piece with its
    /// id and the span [Start, End) of <paramref name="text"/> (UTF-16 offsets) it came from, as sentencepiece aligns
    /// them (a normalized byte maps to the start of the input it was made from; the ▁ of the dummy prefix is empty).
    /// </summary>
    public List<(string Piece, int Id, int Start, int End)> Encode(string text)
    {
        var (normalized, origin) = NormalizeAligned(text);
        var charAt = CharOffsets(text);
        var raw = IsBpe ? EncodeBpe(normalized) : EncodeUnigram(normalized);
        var output = new List<(string Piece, int Id, int Start, int End)>(raw.Count);
        var previousUnknown = false;
        var cursor = 0;
        foreach (var (piece, id) in raw)
        {
            var length = Encoding.UTF8.GetByteCount(piece);
            int start = charAt[origin[cursor]], end = charAt[origin[cursor + length]];
            cursor += length;
            var unknown = id == UnknownId;
            if (unknown && ByteFallback)
            {
                // The last byte piece carries the character's span; the others are empty at its start.
                var bytes = Encoding.UTF8.GetBytes(piece);
                for (var i = 0; i < bytes.Length; i++)
                {
                    var name = $"<0x{bytes[i]:X2}>";
                    output.Add((name, PieceToId(name) ?? UnknownId, start, i == bytes.Length - 1 ? end : start));
                }
            }
            else if (unknown && previousUnknown)
            {
                // sentencepiece merges a run of unknown pieces into one.
                output[^1] = (output[^1].Piece + piece, id, output[^1].Start, end);
            }
            else
            {
                output.Add((piece, id, start, end));
            }

            previousUnknown = unknown;
        }

        return output;
    }

    /// <summary>UTF-8 byte offset → UTF-16 offset of <paramref name="text"/> at every character boundary (and its end).</summary>
    private static int[] CharOffsets(string text)
    {
        var map = new int[Encoding.UTF8.GetByteCount(text) + 1];
        var bytes = 0;
        var i = 0;
        while (i < text.Length)
        {
            var width = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            var count = Encoding.UTF8.GetByteCount(text.AsSpan(i, width));
            for (var k = 0; k < count; k++)
            {
                map[bytes + k] = i;
            }

            bytes += count;
            i += width;
        }

        map[bytes] = text.Length;
        return map;
    }

    /// <summary>Pieces back to text as SentencePieceProcessor.Decode: control pieces vanish, unknown ones read " ⁇ ", byte pieces join into UTF-8, ▁ becomes a space and the first piece's leading space is dropped.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        var first = true;
        foreach (var id in ids)
        {
            if (id < 0 || id >= Pieces.Count)
            {
                continue;
            }

            var piece = Pieces[id];
            switch (piece.Type)
            {
                case PieceType.Control:
                    continue;
                case PieceType.Unknown:
                    bytes.AddRange(Encoding.UTF8.GetBytes(UnknownSurface));
                    break;
                case PieceType.Byte when piece.Text.Length == 6:
                    bytes.Add(Convert.ToByte(piece.Text.Substring(3, 2), 16));
                    break;
                default:
                    {
                        var text = piece.Text.Replace(SentencePieceTokenizer.WordBoundary, ' ');
                        if (first && AddDummyPrefix && !WhitespaceAsSuffix && text.StartsWith(' '))
                        {
                            text = text[1..];
                        }

                        bytes.AddRange(Encoding.UTF8.GetBytes(text));
                        break;
                    }
            }

            first = false;
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>sentencepiece's Normalizer::Normalize over UTF-8: the charsmap rule at each position (longest match), whitespace rules, ▁.</summary>
    internal string Normalize(string text) => NormalizeAligned(text).Normalized;

    /// <summary>
    /// <see cref="Normalize"/> with sentencepiece's norm_to_orig: for each normalized UTF-8 byte, the input byte offset
    /// of the chunk it was made from, plus one entry for the end (the input's length).
    /// </summary>
    private (string Normalized, List<int> Origin) NormalizeAligned(string text)
    {
        var input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length + 3);
        var origin = new List<int>(input.Length + 4);
        var space = Encoding.UTF8.GetBytes(SentencePieceTokenizer.WordBoundary.ToString());
        var position = 0;
        if (RemoveExtraWhitespaces)
        {
            while (position < input.Length)
            {
                var (replacement, consumed) = NormalizePrefix(input, position);
                if (replacement.Length != 1 || replacement[0] != (byte)' ')
                {
                    break;
                }

                position += consumed;
            }
        }

        if (position >= input.Length)
        {
            return ("", [input.Length]);
        }

        if (!WhitespaceAsSuffix && AddDummyPrefix)
        {
            AddSpace();
        }

        var previousSpace = RemoveExtraWhitespaces;
        while (position < input.Length)
        {
            var (replacement, consumed) = NormalizePrefix(input, position);
            var start = 0;
            while (previousSpace && start < replacement.Length && replacement[start] == (byte)' ')
            {
                start++;
            }

            if (start < replacement.Length)
            {
                for (var n = start; n < replacement.Length; n++)
                {
                    if (EscapeWhitespaces && replacement[n] == (byte)' ')
                    {
                        output.AddRange(space);
                        origin.AddRange([position, position, position]);
                    }
                    else
                    {
                        output.Add(replacement[n]);
                        origin.Add(position);
                    }
                }

                previousSpace = replacement[^1] == (byte)' ';
            }

            position += consumed;
            if (!RemoveExtraWhitespaces)
            {
                previousSpace = false;
            }
        }

        if (WhitespaceAsSuffix && AddDummyPrefix)
        {
            AddSpace();
        }

        // The end of the text: the input's end, or (as sentencepiece) where trailing whitespace that was cut began.
        var end = input.Length;
        if (RemoveExtraWhitespaces)
        {
            var tail = EscapeWhitespaces ? space : [(byte)' '];
            while (output.Count >= tail.Length && EndsWith(output, tail))
            {
                end = origin[origin.Count - tail.Length];
                output.RemoveRange(output.Count - tail.Length, tail.Length);
                origin.RemoveRange(origin.Count - tail.Length, tail.Length);
            }
        }

        origin.Add(end);
        return (Encoding.UTF8.GetString(output.ToArray()), origin);

        void AddSpace()
        {
            if (EscapeWhitespaces)
            {
                output.AddRange(space);
                origin.AddRange([position, position, position]);
            }
            else
            {
                output.Add((byte)' ');
                origin.Add(position);
            }
        }
    }

    private static bool EndsWith(List<byte> bytes, byte[] tail)
    {
        for (var i = 0; i < tail.Length; i++)
        {
            if (bytes[bytes.Count - tail.Length + i] != tail[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The normalized bytes of the longest rule at <paramref name="position"/>, or its one UTF-8 character (U+FFFD for a malformed byte).</summary>
    private (byte[] Replacement, int Consumed) NormalizePrefix(byte[] input, int position)
    {
        foreach (var symbol in _userDefined)
        {
            var bytes = Encoding.UTF8.GetBytes(symbol);
            if (input.AsSpan(position).StartsWith(bytes))
            {
                return (bytes, bytes.Length);
            }
        }

        if (_charsMap is not null && _charsMap.LongestMatch(input, position) is { } match)
        {
            return (match.Replacement, match.Length);
        }

        var length = Utf8Length(input, position);
        if (length == 0)
        {
            return ([0xEF, 0xBF, 0xBD], 1);
        }

        return (input[position..(position + length)], length);
    }

    /// <summary>The length of the valid UTF-8 character at <paramref name="position"/>, or 0 if it is malformed.</summary>
    private static int Utf8Length(byte[] input, int position)
    {
        var lead = input[position];
        var length = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
        if (length == 0 || position + length > input.Length)
        {
            return 0;
        }

        for (var i = 1; i < length; i++)
        {
            if ((input[position + i] & 0xC0) != 0x80)
            {
                return 0;
            }
        }

        return System.Text.Unicode.Utf8.IsValid(input.AsSpan(position, length)) ? length : 0;
    }

    /// <summary>Unigram: the best-scoring segmentation (sentencepiece's EncodeOptimized, scores summed in float).</summary>
    private List<(string Piece, int Id)> EncodeUnigram(string normalized)
    {
        var result = new List<(string, int)>();
        if (normalized.Length == 0)
        {
            return result;
        }

        var size = normalized.Length;
        var bestScore = new float[size + 1];
        var startsAt = new int[size + 1];
        var bestId = new int[size + 1];
        Array.Fill(startsAt, -1);
        var unknownScore = _minScore - UnknownPenalty;
        var start = 0;
        while (start < size)
        {
            var charLength = char.IsHighSurrogate(normalized[start]) && start + 1 < size && char.IsLowSurrogate(normalized[start + 1]) ? 2 : 1;
            var scoreHere = bestScore[start];
            var hasSingle = false;
            var limit = Math.Min(size, start + _maxPieceLength);
            for (var end = start + 1; end <= limit; end++)
            {
                if (!_matchable.TryGetValue(normalized.Substring(start, end - start), out var id) || Pieces[id].Type == PieceType.Unused)
                {
                    continue;
                }

                var length = end - start;
                var score = Pieces[id].Type == PieceType.UserDefined ? (Encoding.UTF8.GetByteCount(normalized.AsSpan(start, length)) * _maxScore) - 0.1f : Pieces[id].Score;
                var candidate = score + scoreHere;
                if (startsAt[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    startsAt[end] = start;
                    bestId[end] = id;
                }

                if (length == charLength)
                {
                    hasSingle = true;
                }
            }

            if (!hasSingle)
            {
                var end = start + charLength;
                var candidate = unknownScore + scoreHere;
                if (startsAt[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    startsAt[end] = start;
                    bestId[end] = UnknownId;
                }
            }

            start += charLength;
        }

        var endsAt = size;
        while (endsAt > 0)
        {
            var from = startsAt[endsAt];
            result.Add((normalized[from..endsAt], bestId[endsAt]));
            endsAt = from;
        }

        result.Reverse();
        return result;
    }

    /// <summary>BPE: characters (user-defined symbols whole), then repeatedly the adjacent pair whose join is the best-scoring piece (leftmost on ties).</summary>
    private List<(string Piece, int Id)> EncodeBpe(string normalized)
    {
        var symbols = new List<string>();
        var frozen = new List<bool>();
        var i = 0;
        while (i < normalized.Length)
        {
            var user = _userDefined.FirstOrDefault(u => string.CompareOrdinal(normalized, i, u, 0, u.Length) == 0);
            var length = user?.Length ?? (char.IsHighSurrogate(normalized[i]) && i + 1 < normalized.Length && char.IsLowSurrogate(normalized[i + 1]) ? 2 : 1);
            symbols.Add(normalized.Substring(i, length));
            frozen.Add(user is not null);
            i += length;
        }

        // Plain quadratic loop: each round finds the best pair; sentencepiece's priority queue picks the same one
        // (highest score, then the leftmost).
        var unusedSplits = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        while (true)
        {
            var best = -1;
            var bestScore = float.MinValue;
            for (var k = 0; k + 1 < symbols.Count; k++)
            {
                if (frozen[k] || frozen[k + 1] || !_matchable.TryGetValue(symbols[k] + symbols[k + 1], out var id))
                {
                    continue;
                }

                if (best == -1 || Pieces[id].Score > bestScore)
                {
                    best = k;
                    bestScore = Pieces[id].Score;
                }
            }

            if (best == -1)
            {
                break;
            }

            var merged = symbols[best] + symbols[best + 1];
            if (Pieces[_matchable[merged]].Type == PieceType.Unused)
            {
                unusedSplits[merged] = (symbols[best], symbols[best + 1]);
            }

            symbols[best] = merged;
            symbols.RemoveAt(best + 1);
            frozen.RemoveAt(best + 1);
        }

        var output = new List<(string, int)>(symbols.Count);
        foreach (var symbol in symbols)
        {
            Resegment(symbol);
        }

        return output;

        void Resegment(string piece)
        {
            var id = _pieceIds.TryGetValue(piece, out var found) ? found : UnknownId;
            if (Pieces[id].Type == PieceType.Unused && unusedSplits.TryGetValue(piece, out var parts))
            {
                Resegment(parts.Item1);
                Resegment(parts.Item2);
                return;
            }

            output.Add((piece, id));
        }
    }

    private static Piece ReadPiece(byte[] bytes, string source)
    {
        var reader = new ProtoReader(bytes, 0, bytes.Length);
        string? text = null;
        var score = 0f;
        var type = PieceType.Normal;
        while (reader.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1 when wire == 2: text = Encoding.UTF8.GetString(reader.Bytes()); break;
                case 2 when wire == 5: score = reader.Float(); break;
                case 3 when wire == 0: type = (PieceType)(int)reader.Varint(); break;
                default: reader.Skip(wire); break;
            }
        }

        if (string.IsNullOrEmpty(text) || !Enum.IsDefined(type))
        {
            throw new InvalidDataException($"{source}: a piece has no text or an unknown type ({(int)type}); the model file is damaged.");
        }

        return new Piece(text, score, type);
    }

    /// <summary>A minimal protobuf wire-format reader (varint, 32-bit, length-delimited fields).</summary>
    private sealed class ProtoReader(byte[] bytes, int start, int length)
    {
        private readonly int _end = start + length;
        private int _position = start;

        public bool Next(out int field, out int wire)
        {
            field = 0;
            wire = 0;
            if (_position >= _end)
            {
                return false;
            }

            var key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = bytes[_position++];
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }

            throw new InvalidDataException("A protobuf varint is longer than 10 bytes.");
        }

        public float Float()
        {
            var value = BitConverter.ToSingle(bytes, _position);
            _position += 4;
            return value;
        }

        public (int Start, int Length) Span()
        {
            var length = checked((int)Varint());
            if (length < 0 || _position + length > _end)
            {
                throw new InvalidDataException("A protobuf field runs past the end of its message.");
            }

            var start = _position;
            _position += length;
            return (start, length);
        }

        public byte[] Bytes()
        {
            var (start, length) = Span();
            return bytes[start..(start + length)];
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _position += 8; break;
                case 2: Span(); break;
                case 5: _position += 4; break;
                default: throw new InvalidDataException($"Unsupported protobuf wire type {wire}.");
            }
        }
    }

    /// <summary>
    /// sentencepiece's precompiled normalization rules: a uint32 size, a darts-clone double-array trie over UTF-8 keys
    /// of that many bytes, then the NUL-terminated replacement strings the trie's values point into.
    /// </summary>
    private sealed class CharsMap
    {
        private readonly uint[] _units;
        private readonly byte[] _normalized;

        private CharsMap(uint[] units, byte[] normalized)
        {
            _units = units;
            _normalized = normalized;
        }

        public static CharsMap Read(byte[] blob, string source)
        {
            if (blob.Length <= 4)
            {
                throw new InvalidDataException($"{source}: the precompiled charsmap is broken (shorter than its header).");
            }

            var trieSize = BitConverter.ToUInt32(blob, 0);
            if (trieSize >= blob.Length - 4 || trieSize % 4 != 0)
            {
                throw new InvalidDataException($"{source}: the precompiled charsmap's trie ({trieSize} bytes) does not fit the blob ({blob.Length} bytes).");
            }

            var units = new uint[trieSize / 4];
            for (var i = 0; i < units.Length; i++)
            {
                units[i] = BitConverter.ToUInt32(blob, 4 + (4 * i));
            }

            return new CharsMap(units, blob[(4 + (int)trieSize)..]);
        }

        /// <summary>darts-clone commonPrefixSearch from <paramref name="position"/>, keeping the longest match.</summary>
        public (byte[] Replacement, int Length)? LongestMatch(byte[] key, int position)
        {
            var longestLength = 0;
            var longestValue = 0;
            uint node = 0;
            var unit = _units[node];
            node ^= Offset(unit);
            for (var i = position; i < key.Length; i++)
            {
                node ^= key[i];
                if (node >= _units.Length)
                {
                    break;
                }

                unit = _units[node];
                if (Label(unit) != key[i])
                {
                    break;
                }

                node ^= Offset(unit);
                if (((unit >> 8) & 1) == 1 && node < _units.Length)
                {
                    longestLength = i + 1 - position;
                    longestValue = (int)(_units[node] & 0x7FFFFFFFu);
                }
            }

            if (longestLength == 0 || longestValue >= _normalized.Length)
            {
                return null;
            }

            var end = Array.IndexOf(_normalized, (byte)0, longestValue);
            if (end < 0)
            {
                end = _normalized.Length;
            }

            return (_normalized[longestValue..end], longestLength);
        }

        private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

        private static uint Label(uint unit) => unit & ((1u << 31) | 0xFFu);
    }
}
