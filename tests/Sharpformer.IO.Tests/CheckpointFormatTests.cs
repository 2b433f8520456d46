using System.Buffers.Binary;
using System.Text;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Tests;

public sealed class CheckpointFormatTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpformer-format-" + Guid.NewGuid().ToString("N"));

    public CheckpointFormatTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Detect_FilesWrittenByOurWriters_ByContentWhateverTheName()
    {
        string st = Path.Combine(_dir, "weights.bin");
        SafeTensorsWriter.Write(st, [("w", Tensor.Zeros(new Shape(2, 2)))]);
        string gguf = Path.Combine(_dir, "weights.safetensors");
        var writer = new GgufWriter();
        writer.AddTensor("w", GgufTensorType.F32, [2], new byte[8]);
        writer.WriteTo(gguf);
        string index = Path.Combine(_dir, "index.txt");
        File.WriteAllText(index, "  {\"weight_map\": {}}");

        Assert.Equal(CheckpointFormat.Safetensors, CheckpointFormats.Detect(st));
        Assert.Equal(CheckpointFormat.Gguf, CheckpointFormats.Detect(gguf));
        Assert.Equal(CheckpointFormat.SafetensorsIndex, CheckpointFormats.Detect(index));
    }

    [Fact]
    public void Detect_OnnxModelProtoHead_IsOnnx()
    {
        // ModelProto: ir_version = 8 (tag 0x08), producer_name "pytorch" (tag 0x12).
        byte[] head = [0x08, 0x08, 0x12, 0x07, .. Encoding.ASCII.GetBytes("pytorch")];

        Assert.Equal(CheckpointFormat.Onnx, CheckpointFormats.Detect(head, 1000));
    }

    [Theory]
    [InlineData(new byte[0], 0L)]
    [InlineData(new byte[] { 0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0, 0, 0 }, 10L)]
    [InlineData(new byte[] { 0x08 }, 1L)]
    public void Detect_ForeignOrTooShort_IsUnknown(byte[] head, long length) =>
        Assert.Equal(CheckpointFormat.Unknown, CheckpointFormats.Detect(head, length));

    [Fact]
    public void Detect_SafetensorsHeaderLongerThanTheFile_IsNotSafetensors()
    {
        var head = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(head, 1_000_000);
        head[8] = (byte)'{';

        Assert.Equal(CheckpointFormat.Unknown, CheckpointFormats.Detect(head, 100));
    }
}
