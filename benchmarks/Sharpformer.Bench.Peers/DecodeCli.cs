using System.Globalization;
using Sharpformer.IO.Gguf;

namespace Sharpformer.Bench.Peers;

/// <summary>
/// <c>decode</c>: GPT-2 prompt processing and decoding, Sharpformer vs llama.cpp on the same weights and thread count,
/// plus the machine's read bandwidth measured in the same run. <c>sharpformer bench decode</c> runs it.
/// </summary>
internal static class DecodeCli
{
    /// <summary>Runs <c>decode</c> with the arguments after the verb.</summary>
    public static int Run(string[] args)
    {
        DecodeOptions options;
        try
        {
            options = DecodeOptions.Parse(args);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"error: bench decode: {ex.Message}");
            return 2;
        }

        try
        {
            return DecodeBench.Run(options, Console.Out);
        }
        catch (Exception ex) when (ex is GgufFormatException or IOException or InvalidDataException or IO.Config.ModelConfigException or IO.SafeTensors.SafeTensorsException)
        {
            Console.Error.WriteLine($"error: bench decode: {ex.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
    }
}

/// <summary>Options of <c>decode</c>.</summary>
internal sealed record DecodeOptions(string? Model, bool Random124M, IReadOnlyList<string> DTypes, int Threads, int PromptTokens, int NewTokens, int Batch, string Arch = "gpt2", int Samples = 7, bool PrepareOnly = false,
    string? KvCache = null)
{
    public static DecodeOptions Parse(string[] args)
    {
        string? model = null;
        bool random = false;
        string[] dtypes = ["f32", "f16"];
        int threads = Environment.ProcessorCount, prompt = 128, generated = 64, batch = 8, samples = 7;
        var arch = "gpt2";
        var prepare = false;
        string? kvCache = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int NextInt()
            {
                var name = args[i];
                return int.TryParse(Next(), CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"{name} needs a positive integer.");
            }

            switch (args[i])
            {
                case "--model": model = Next(); break;
                case "--random-124m": random = true; break;
                case "--dtype":
                    var d = Next();
                    dtypes = d switch
                    {
                        "f32" or "f16" or "q8_0" or "q4_0" or "q4_k" => [d],
                        "both" => ["f32", "f16"],
                        _ => throw new ArgumentException($"--dtype '{d}': use f32, f16, both, q8_0, q4_0 or q4_k."),
                    };
                    break;
                case "--threads": threads = NextInt(); break;
                case "--prompt-tokens": prompt = NextInt(); break;
                case "--new-tokens": generated = NextInt(); break;
                case "--batch": batch = NextInt(); break;
                case "--samples": samples = NextInt(); break;
                case "--prepare-only": prepare = true; break;
                case "--kv-cache":
                    kvCache = Next();
                    if (kvCache is not ("f16" or "f32"))
                    {
                        throw new ArgumentException($"--kv-cache '{kvCache}': use f16 or f32 (Sharpformer's KV cache; llama.cpp keeps its default f16).");
                    }

                    break;
                case "--arch":
                    arch = Next();
                    if (arch is not ("gpt2" or "llama"))
                    {
                        throw new ArgumentException($"--arch '{arch}': use gpt2 (a --model folder or --random-124m) or llama (a random TinyLlama-1.1B-shaped model).");
                    }

                    break;
                default: throw new ArgumentException($"unknown option '{args[i]}'.");
            }
        }

        if (arch == "llama")
        {
            if (model is not null || random)
            {
                throw new ArgumentException("--arch llama runs its own random TinyLlama-1.1B-shaped model: drop --model and --random-124m.");
            }
        }
        else if ((model is null) == !random)
        {
            throw new ArgumentException("pass exactly one of --model <hf-dir> and --random-124m.");
        }

        return new DecodeOptions(model, random, dtypes, threads, prompt, generated, batch, arch, samples, prepare, kvCache);
    }
}
