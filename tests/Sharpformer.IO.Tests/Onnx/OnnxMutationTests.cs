using Sharpformer.IO.Onnx;

namespace Sharpformer.IO.Tests.Onnx;

/// <summary>
/// Seeded mutation tests (a small in-process stand-in for fuzzing): thousands of corrupted variants of a valid BERT-shaped
/// graph go through the reader and the importer, and the only exception allowed out is <see cref="OnnxFormatException"/>.
/// </summary>
public class OnnxMutationTests
{
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 2)]
    [InlineData(true, 3)]
    [InlineData(false, 4)]
    public void ParseAndImport_MutatedGraphs_ThrowOnlyOnnxFormatException(bool fusedLayerNorm, int seed)
    {
        byte[] original = SyntheticBertTests.SyntheticBytes(fusedLayerNorm);
        var random = new Random(seed);
        int parsed = 0, imported = 0;
        for (int i = 0; i < 1500; i++)
        {
            byte[] bytes = Mutate(original, random);
            OnnxModel model;
            try
            {
                model = OnnxReader.Parse(bytes, "mutant.onnx", null);
                parsed++;
            }
            catch (OnnxFormatException)
            {
                continue;
            }

            try
            {
                BertOnnxImporter.Import(model);
                imported++;
            }
            catch (OnnxFormatException)
            {
                // The expected way to refuse a graph.
            }
        }

        // The mutations must exercise both layers: many variants still parse, and some still import.
        Assert.InRange(parsed, 100, 1500);
        Assert.InRange(imported, 1, parsed);
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = (byte[])original.Clone();
        int edits = random.Next(1, 4);
        for (int e = 0; e < edits; e++)
        {
            int at = random.Next(bytes.Length);
            switch (random.Next(4))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: bytes[at] = (byte)random.Next(256); break;
                case 2: bytes[at] = random.Next(2) == 0 ? (byte)0 : (byte)0xFF; break;
                default: bytes = bytes[..Math.Max(1, at)]; break;
            }
        }

        return bytes;
    }
}
