using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Tests.SafeTensors;

/// <summary>The HF cache's snapshot files are symbolic links to blobs: opening through the link reads the blob.</summary>
public sealed class SymlinkTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Open_SnapshotSymlinkToBlob_ReadsTheBlob()
    {
        var blob = _dir.File("blob");
        SafeTensorsWriter.Write(blob, [("w", Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, new Shape(2, 3)))]);
        Directory.CreateDirectory(_dir.File("snapshot"));
        var link = Path.Combine(_dir.Path, "snapshot", "model.safetensors");
        File.CreateSymbolicLink(link, Path.Combine("..", "blob"));

        using var file = SafeTensorsFile.Open(link);
        using var loaded = SafeTensorsLoader.Open(_dir.File("snapshot"));

        Assert.Equal(new FileInfo(blob).Length, file.FileLength);
        Assert.Equal([1f, 2, 3, 4, 5, 6], file.GetTensor("w").ToArray());
        Assert.Equal([1f, 2, 3, 4, 5, 6], loaded.GetTensorAsF32("w").ToArray());
    }

    [Fact]
    public void Open_DanglingSymlink_ThrowsFileNotFound()
    {
        var link = _dir.File("model.safetensors");
        File.CreateSymbolicLink(link, "missing-blob");

        Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Open(link));
    }
}
