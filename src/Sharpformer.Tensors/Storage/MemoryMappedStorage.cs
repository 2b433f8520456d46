using System.IO.MemoryMappedFiles;

namespace Sharpformer.Tensors.Storage;

/// <summary>
/// A read-only memory map of (part of) a file. Tensors viewing it are zero-copy: pages are read from disk on first touch
/// and shared with the OS page cache, so loading a checkpoint costs no heap memory.
/// </summary>
public sealed unsafe class MemoryMappedStorage : TensorStorage
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    private MemoryMappedStorage(MemoryMappedFile file, MemoryMappedViewAccessor view, long byteLength, string path)
    {
        _file = file;
        _view = view;
        ByteLength = byteLength;
        Path = path;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + view.PointerOffset;
    }

    /// <summary>Maps <paramref name="byteLength"/> bytes of <paramref name="path"/> from <paramref name="fileOffset"/> read-only.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range lies outside the file.</exception>
    public static MemoryMappedStorage Open(string path, long fileOffset = 0, long? byteLength = null)
    {
        var info = new FileInfo(path);
        // A FileInfo of a symbolic link describes the link (Length = the target path's length); the HF cache's snapshot
        // files are links to blobs, so size the file the link points to.
        if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
        {
            info = target;
        }

        if (!info.Exists)
        {
            throw new FileNotFoundException($"Cannot map '{path}': the file does not exist.", path);
        }

        long length = byteLength ?? info.Length - fileOffset;
        if (fileOffset < 0 || length < 0 || fileOffset > info.Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(fileOffset), $"Cannot map bytes [{fileOffset}, {fileOffset + length}) of '{path}': the file has {info.Length} bytes.");
        }

        if (info.Length == 0)
        {
            // A zero-length file cannot be mapped; an empty storage needs no mapping anyway.
            throw new ArgumentException($"Cannot map '{path}': the file is empty.", nameof(path));
        }

        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = file.CreateViewAccessor(fileOffset, length, MemoryMappedFileAccess.Read);
            return new MemoryMappedStorage(file, view, length, path);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The mapped file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public override long ByteLength { get; }

    /// <inheritdoc/>
    public override bool IsReadOnly => true;

    /// <summary>Address of the first mapped byte.</summary>
    public byte* Pointer => _base;

    /// <inheritdoc/>
    protected override Span<byte> GetBytesCore(long byteOffset, int byteLength) => new(_base + byteOffset, byteLength);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (_base != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }

        if (disposing)
        {
            _view.Dispose();
            _file.Dispose();
        }

        base.Dispose(disposing);
    }
}
