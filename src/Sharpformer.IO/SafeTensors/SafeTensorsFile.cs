using System.Buffers.Binary;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Storage;

namespace Sharpformer.IO.SafeTensors;

/// <summary>
/// A validated safetensors file, memory-mapped read-only. Tensors are zero-copy views over one shared
/// <see cref="MemoryMappedStorage"/>; the file stays mapped until this object is disposed.
/// </summary>
/// <example>
/// <code>
/// using var file = SafeTensorsFile.Open("model.safetensors");
/// Tensor w = file.GetTensor("lm_head.weight");     // BF16 as stored, no copy
/// Tensor w32 = file.GetTensorAsF32("lm_head.weight"); // converted
/// </code>
/// </example>
public sealed unsafe class SafeTensorsFile : ISafeTensorsSource
{
    private readonly MemoryMappedStorage _storage;

    private SafeTensorsFile(string path, SafeTensorsHeader header, MemoryMappedStorage storage, long fileLength)
    {
        Path = path;
        Header = header;
        _storage = storage;
        FileLength = fileLength;
    }

    /// <summary>The file's path as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>The parsed header.</summary>
    public SafeTensorsHeader Header { get; }

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }

    /// <summary>The memory map of the whole file that every zero-copy tensor view shares.</summary>
    public MemoryMappedStorage Storage => _storage;

    /// <inheritdoc/>
    public IReadOnlyList<SafeTensorInfo> Tensors => Header.Tensors;

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    /// <summary>Maps <paramref name="path"/> read-only and validates its header.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="SafeTensorsException">The file breaks a rule of the format; the message names the rule and the tensor.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("safetensors data is little-endian; zero-copy reading needs a little-endian machine.");
        }

        var info = new FileInfo(path);
        // A FileInfo of a symbolic link describes the link (Length = the target path's length); the HF cache's snapshot
        // files are links to blobs, so size the file the link points to.
        if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
        {
            info = target;
        }

        if (!info.Exists)
        {
            throw new FileNotFoundException($"No safetensors file at '{path}'.", path);
        }

        long length = info.Length;
        if (length < SafeTensorsHeader.LengthPrefixSize)
        {
            // Too short to hold the length; reject before mapping (an empty file cannot be mapped at all).
            throw SafeTensorsHeader.Error(SafeTensorsErrorKind.HeaderTooSmall, path, null,
                $"the file has {length} bytes, fewer than the 8-byte header length; it is truncated or not a safetensors file.");
        }

        var storage = MemoryMappedStorage.Open(path);
        try
        {
            // Parse straight from the mapping: the header is never copied, whatever length it claims.
            long visible = Math.Min(storage.ByteLength, SafeTensorsHeader.LengthPrefixSize + SafeTensorsHeader.MaxHeaderSize);
            var prefix = new ReadOnlySpan<byte>(storage.Pointer, (int)visible);
            var header = SafeTensorsHeader.Parse(prefix, storage.ByteLength, path);
            return new SafeTensorsFile(path, header, storage, length);
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    /// <summary>Reads just the header of <paramref name="path"/> (validated against the file size) without mapping the data.</summary>
    /// <exception cref="SafeTensorsException">The file breaks a rule of the format.</exception>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        long length = stream.Length;
        Span<byte> prefix = stackalloc byte[SafeTensorsHeader.LengthPrefixSize];
        if (length < prefix.Length)
        {
            return SafeTensorsHeader.Parse(ReadOnlySpan<byte>.Empty, length, path);
        }

        stream.ReadExactly(prefix);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);

        // Allocate only what both the cap and the real file allow; Parse reports which one was broken.
        long take = (long)Math.Min(n, (ulong)Math.Min(SafeTensorsHeader.MaxHeaderSize, length - prefix.Length));
        var buffer = new byte[prefix.Length + take];
        prefix.CopyTo(buffer);
        stream.ReadExactly(buffer.AsSpan(prefix.Length));
        return SafeTensorsHeader.Parse(buffer, length, path);
    }

    /// <inheritdoc/>
    public bool Contains(string name) => Header.TryGetInfo(name, out _);

    /// <inheritdoc/>
    public SafeTensorInfo GetInfo(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Header.TryGetInfo(name, out var info))
        {
            throw SafeTensorsHeader.Error(SafeTensorsErrorKind.TensorNotFound, Path, name,
                $"no such tensor; the file has {Header.Tensors.Count} tensors{Suggest(name)}.");
        }

        return info;
    }

    /// <inheritdoc/>
    public Tensor GetTensor(string name)
    {
        var info = GetInfo(name);
        var dtype = info.DType.ToTensorDType() ?? throw SafeTensorsHeader.Error(SafeTensorsErrorKind.UnsupportedDType, Path, name,
            $"{info.DType} has no Sharpformer tensor type (F32, F16, BF16, I32, I64); call GetTensorAsF32 to convert it, or GetBytes for the raw bytes.");
        var shape = ToShape(info);
        ThrowIfDisposed();
        long absolute = Header.DataOffset + info.Begin;
        int size = dtype.SizeOf();
        if (info.ElementCount == 0)
        {
            return Tensor.Zeros(shape, dtype);
        }

        if (absolute % size == 0)
        {
            // The writer pads the header to 8 bytes and orders tensors by alignment, so this is the normal path.
            return new Tensor(_storage, dtype, shape, offset: absolute / size);
        }

        // A foreign writer left this tensor misaligned for its element type: copy it (bounded by the file size).
        var copy = Tensor.Empty(shape, dtype);
        CopyBytes(info, copy);
        return copy;
    }

    /// <inheritdoc/>
    public Tensor GetTensorAsF32(string name)
    {
        var info = GetInfo(name);
        if (info.DType.ToTensorDType() is { } direct)
        {
            var t = GetTensor(name);
            return direct == DType.F32 ? t : t.To(DType.F32);
        }

        if (!info.DType.IsConvertibleToF32())
        {
            throw SafeTensorsHeader.Error(SafeTensorsErrorKind.UnsupportedDType, Path, name,
                $"{info.DType} has no F32 conversion here (packed MX formats, complex and FNUZ FP8 are not decoded); read GetBytes and decode it yourself.");
        }

        var shape = ToShape(info);
        var result = Tensor.Empty(shape, DType.F32);
        if (info.ElementCount > 0)
        {
            SafeTensorsConvert.ToF32(info.DType, GetBytes(name), result.AsSpan<float>());
        }

        return result;
    }

    /// <inheritdoc/>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
        {
            throw SafeTensorsHeader.Error(SafeTensorsErrorKind.UnsupportedDType, Path, name,
                $"the tensor has {info.ByteLength} bytes, more than one span can hold (2 GiB); read it through GetTensor instead.");
        }

        ThrowIfDisposed();
        return _storage.GetReadOnlyBytes(Header.DataOffset + info.Begin, (int)info.ByteLength);
    }

    /// <summary>Unmaps the file. Tensors obtained from it must not be used afterwards.</summary>
    public void Dispose() => _storage.Dispose();

    private void CopyBytes(SafeTensorInfo info, Tensor destination)
    {
        var bytes = GetBytes(info.Name);
        bytes.CopyTo(destination.Storage.GetBytes(0, bytes.Length));
    }

    private Shape ToShape(SafeTensorInfo info)
    {
        var dims = new int[info.Shape.Count];
        for (int i = 0; i < dims.Length; i++)
        {
            if (info.Shape[i] > int.MaxValue)
            {
                throw SafeTensorsHeader.Error(SafeTensorsErrorKind.UnsupportedDType, Path, info.Name,
                    $"dimension {i} is {info.Shape[i]}, beyond the 2^31-1 a Sharpformer Shape can hold; read GetBytes instead.");
            }

            dims[i] = (int)info.Shape[i];
        }

        return new Shape(dims);
    }

    private void ThrowIfDisposed()
    {
        if (_storage.IsDisposed)
        {
            throw new ObjectDisposedException(nameof(SafeTensorsFile), $"'{Path}' has been closed; keep the SafeTensorsFile open while reading tensors.");
        }
    }

    private string Suggest(string name)
    {
        // Point at a near miss (a common prefix mismatch such as "model." vs none) to help fix the key.
        foreach (var t in Header.Tensors)
        {
            if (t.Name.EndsWith(name, StringComparison.Ordinal) || name.EndsWith(t.Name, StringComparison.Ordinal))
            {
                return $"; did you mean '{t.Name}'?";
            }
        }

        return Header.Tensors.Count > 0 ? $", e.g. '{Header.Tensors[0].Name}'" : "";
    }
}
