using System.Buffers.Binary;

namespace Sharpformer.IO;

/// <summary>The weight-file formats Sharpformer reads, as <see cref="CheckpointFormats.Detect(string)"/> tells them apart.</summary>
public enum CheckpointFormat
{
    /// <summary>Not one of the formats below (or a file too short to tell).</summary>
    Unknown,

    /// <summary>A safetensors file: an 8-byte little-endian header length, then a JSON header.</summary>
    Safetensors,

    /// <summary>A sharded safetensors index (<c>model.safetensors.index.json</c>): a JSON object.</summary>
    SafetensorsIndex,

    /// <summary>A llama.cpp GGUF file: the magic <c>GGUF</c>.</summary>
    Gguf,

    /// <summary>An ONNX model: a protobuf ModelProto starting with its <c>ir_version</c> field.</summary>
    Onnx,
}

/// <summary>Detects a weight file's format from its first bytes, never from its extension.</summary>
public static class CheckpointFormats
{
    /// <summary>The format of the file at <paramref name="path"/>, read from its first 16 bytes.</summary>
    /// <param name="path">A file path.</param>
    /// <returns>The detected format, or <see cref="CheckpointFormat.Unknown"/>.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static CheckpointFormat Detect(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"no such file: {path}", path);
        Span<byte> head = stackalloc byte[16];
        int n;
        using (var stream = File.OpenRead(path))
        {
            n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }

        return Detect(head[..n], new FileInfo(path).Length);
    }

    /// <summary>The format of a file that starts with <paramref name="head"/> and is <paramref name="fileLength"/> bytes long.</summary>
    /// <param name="head">The file's first bytes (16 are enough).</param>
    /// <param name="fileLength">The whole file's length.</param>
    /// <returns>The detected format, or <see cref="CheckpointFormat.Unknown"/>.</returns>
    public static CheckpointFormat Detect(ReadOnlySpan<byte> head, long fileLength)
    {
        if (head.Length >= 4 && head[..4].SequenceEqual("GGUF"u8)) return CheckpointFormat.Gguf;

        int first = FirstNonSpace(head);
        if (first >= 0 && head[first] == (byte)'{') return CheckpointFormat.SafetensorsIndex;

        // safetensors: u64 header length N with 8 + N <= file length, the header a JSON object ('{', maybe after spaces).
        if (head.Length >= 9 && fileLength >= 10)
        {
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(head);
            int jsonStart = FirstNonSpace(head[8..]);
            if (headerLength >= 2 && headerLength <= (ulong)(fileLength - 8) && jsonStart >= 0 && head[8 + jsonStart] == (byte)'{')
            {
                return CheckpointFormat.Safetensors;
            }
        }

        // ONNX: ModelProto's field 1 (ir_version, varint) comes first in every exporter's output: tag 0x08, then a small
        // version, then another field's tag.
        if (head.Length >= 3 && head[0] == 0x08 && head[1] is >= 1 and <= 32) return CheckpointFormat.Onnx;
        return CheckpointFormat.Unknown;
    }

    private static int FirstNonSpace(ReadOnlySpan<byte> bytes)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return i;
        }

        return -1;
    }
}
