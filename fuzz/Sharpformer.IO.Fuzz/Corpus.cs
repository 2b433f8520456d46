using System.Text;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Fuzz;

/// <summary>Writes the seed corpus: small valid files of every dtype family, an index, and the upstream negative vectors.</summary>
internal static class Corpus
{
    public static void Write(string directory)
    {
        Directory.CreateDirectory(directory);
        string P(string name) => Path.Combine(directory, name);

        SafeTensorsWriter.Write(P("valid-f32-bf16-i64.safetensors"),
        [
            ("w", Tensor.FromArray(new float[] { 1, -2, 3.5f, 0 }, new Shape(2, 2))),
            ("b", Tensor.FromArray(new float[] { 0.5f, 1 }).To(DType.BF16)),
            ("ids", Tensor.FromArray(new long[] { 1, 2 })),
            ("s", Tensor.Full(Shape.Scalar, 2f)),
            ("e", Tensor.Zeros(new Shape(0, 3))),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        SafeTensorsWriter.WriteRaw(P("valid-narrow.safetensors"),
        [
            new("u8", SafeTensorsDType.U8, [3], new byte[] { 1, 2, 3 }),
            new("f8", SafeTensorsDType.F8_E4M3, [2], new byte[] { 0x38, 0x7E }),
            new("f4", SafeTensorsDType.F4, [2], new byte[] { 0x12 }),
            new("f16", SafeTensorsDType.F16, [1], new byte[] { 0, 0x3C }),
            new("f64", SafeTensorsDType.F64, [1], new byte[8]),
        ]);
        SafeTensorsWriter.Write(P("valid-empty.safetensors"), []);
        File.WriteAllText(P("index.json"), "{\"metadata\":{\"total_size\":16},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");

        // Upstream tensor.rs negative vectors (header too large, too small, bad length, non-UTF-8, not JSON, polyglot,
        // missing bytes, invalid info, overflow), and an offset attack.
        const string I32 = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
        File.WriteAllBytes(P("bad-header-too-large.safetensors"), [0x3C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, .. Encoding.UTF8.GetBytes(I32), .. new byte[16]]);
        File.WriteAllBytes(P("bad-header-too-small.safetensors"), [1, 2, 3]);
        File.WriteAllBytes(P("bad-header-length.safetensors"), [0x3C, 0, 0, 0, 0, 0, 0, 0]);
        File.WriteAllBytes(P("bad-non-utf8.safetensors"), [1, 0, 0, 0, 0, 0, 0, 0, 0xFF]);
        File.WriteAllBytes(P("bad-not-json.safetensors"), [1, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        File.WriteAllBytes(P("bad-polyglot.safetensors"), Build(I32, new byte[16], "extra_bogus_data_for_polyglot_file"u8.ToArray()));
        File.WriteAllBytes(P("bad-missing-bytes.safetensors"), Build(I32, new byte[14], []));
        File.WriteAllBytes(P("bad-invalid-info.safetensors"), Build("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", new byte[4], []));
        File.WriteAllBytes(P("bad-overflow.safetensors"), Build("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],\"data_offsets\":[0,16]}}", new byte[16], []));
        File.WriteAllBytes(P("bad-overlap.safetensors"), Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8], []));
        File.WriteAllBytes(P("bad-duplicate.safetensors"), Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", new byte[4], []));

        // GGUF (v3, from our writer): metadata of each kind the writer makes and tensors of the float types.
        var gguf = new GgufWriter();
        gguf.Add("general.architecture", GgufValue.FromString("gpt2"));
        gguf.Add("gpt2.context_length", GgufValue.FromUInt32(8));
        gguf.Add("tokenizer.ggml.tokens", GgufValue.FromStrings(["a", "b", "<|endoftext|>"]));
        gguf.Add("tokenizer.ggml.token_type", GgufValue.FromInt32s([1, 1, 3]));
        gguf.Add("scores", GgufValue.FromFloat32s([0f, -1f]));
        gguf.Add("flag", GgufValue.FromBool(true));
        gguf.AddTensor("f32", GgufTensorType.F32, [2, 2], new byte[16]);
        gguf.AddTensor("f16", GgufTensorType.F16, [3], new byte[] { 0, 0x3C, 0, 0xC0, 0, 0 });
        gguf.AddTensor("bf16", GgufTensorType.BF16, [1], new byte[] { 0x80, 0x3F });
        // Quantized blocks: one Q8_0 row of 32 values (scale 1.0) and one Q4_K super-block.
        gguf.AddTensor("q8_0", GgufTensorType.Q8_0, [32, 1], (byte[])[0, 0x3C, .. Enumerable.Range(-16, 32).Select(v => (byte)(sbyte)v)]);
        gguf.AddTensor("q4_k", GgufTensorType.Q4_K, [256, 1], (byte[])[0, 0x3C, 0, 0x38, .. Enumerable.Repeat((byte)0x21, 12), .. Enumerable.Range(0, 128).Select(v => (byte)v)]);
        gguf.WriteTo(P("valid.gguf"));
        var ggufBytes = File.ReadAllBytes(P("valid.gguf"));
        File.WriteAllBytes(P("bad-truncated.gguf"), ggufBytes[..(ggufBytes.Length / 2)]);

        // ONNX: a minimal ModelProto (opset 17, one MatMul node with a float attribute, a 2×2 float initializer, graph
        // input and output), written field by field; and a truncated copy.
        byte[] tensor = [.. Varint(1, 2), .. Varint(1, 2), .. Varint(2, 1), .. Bytes(8, "w"u8), .. Bytes(9, new byte[16])];
        byte[] attribute = [.. Bytes(1, "alpha"u8), .. Key(2, 5), 0, 0, 0x80, 0x3F, .. Varint(20, 1)];
        byte[] node = [.. Bytes(1, "x"u8), .. Bytes(1, "w"u8), .. Bytes(2, "y"u8), .. Bytes(4, "MatMul"u8), .. Bytes(5, attribute)];
        byte[] graph = [.. Bytes(1, node), .. Bytes(2, "g"u8), .. Bytes(5, tensor), .. Bytes(11, Bytes(1, "x"u8)), .. Bytes(12, Bytes(1, "y"u8))];
        byte[] model = [.. Varint(1, 8), .. Bytes(2, "fuzz"u8), .. Bytes(7, graph), .. Bytes(8, Varint(2, 17))];
        File.WriteAllBytes(P("valid.onnx"), model);
        File.WriteAllBytes(P("bad-truncated.onnx"), model[..(model.Length - 7)]);

        // Regressions: inputs afl-fuzz once crashed the index parser with (invalid UTF-8 / a lone surrogate in a string).
        File.WriteAllBytes(P("regress-index-non-utf8.json"), [.. "{\"metadata\":{\"total_size\":\"m"u8, 0xE3, .. "ds\"}}"u8]);
        File.WriteAllText(P("regress-index-lone-surrogate.json"), "{\"weight_map\":{\"\\ud800\":\"a.safetensors\"}}");

        // A header-only GGUF (no tensors, no metadata) shorter than its aligned data offset: valid, and once taken for
        // a broken one by the harness's own invariant.
        File.WriteAllBytes(P("regress-gguf-header-only.gguf"), [.. "GGUF"u8, 3, 0, 0, 0, .. new byte[16], 0, 0, 0xFC, 0, 0, 0]);
    }

    /// <summary>A protobuf field key: field number and wire type (0 varint, 2 length-delimited, 5 fixed32).</summary>
    private static byte[] Key(int field, int wire) => VarintBytes((ulong)((field << 3) | wire));

    private static byte[] Varint(int field, ulong value) => [.. Key(field, 0), .. VarintBytes(value)];

    private static byte[] Bytes(int field, ReadOnlySpan<byte> value) => [.. Key(field, 2), .. VarintBytes((ulong)value.Length), .. value];

    private static byte[] VarintBytes(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }

    private static byte[] Build(string header, byte[] data, byte[] trailer)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length + trailer.Length];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        trailer.CopyTo(bytes, 8 + h.Length + data.Length);
        return bytes;
    }
}
