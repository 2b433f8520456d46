using System.CommandLine;
using System.Diagnostics;
using System.Globalization;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer bench decode</c>: GPT-2 (or, with <c>--arch llama</c>, a random TinyLlama-1.1B-shaped Llama) prompt processing and decoding side by side with llama.cpp on the GGUF export
/// of the same weights. The peer (LLamaSharp and its native llama.cpp) must never be a dependency of src/, so this verb
/// runs the harness in benchmarks/Sharpformer.Bench.Peers as a child process (<c>dotnet run</c>, which builds it on
/// first use), the same mechanism as <c>bench encoder</c>: the CLI stays free of native engines, and the harness
/// measures both engines and the read bandwidth in one process and one run.
/// </summary>
internal static class BenchDecodeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "A Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer files)." };
        var random = new Option<bool>("--random-124m") { Description = "Use a GPT-2 124M-shaped model with random weights and the real tokenizer (made once under the temp folder, ~500 MB, kept for later runs; the run says where)." };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Weight type of both engines (llama.cpp's GGUF and Sharpformer's matrices): f32, f16 or both; or q8_0, q4_0, q4_k (both engines run the same quantized GGUF file).",
            DefaultValueFactory = _ => "both",
        };
        dtype.AcceptOnlyFromAmong("f32", "f16", "both", "q8_0", "q4_0", "q4_k");
        var threads = new Option<int>("--threads") { Description = "Threads for both engines (default: every core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length T.", DefaultValueFactory = _ => 128 };
        var generated = new Option<int>("--new-tokens") { Description = "Tokens decoded after the prompt.", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch") { Description = "Sequences decoded together in the batched column.", DefaultValueFactory = _ => 8 };
        var arch = new Option<string>("--arch")
        {
            Description = "gpt2 (--model or --random-124m), or llama: a random TinyLlama-1.1B-shaped model (hidden 2048, 22 layers, 32 heads over 4 KV heads) made once under the temp folder with its GGUF files (the run says where).",
            DefaultValueFactory = _ => "gpt2",
        };
        arch.AcceptOnlyFromAmong("gpt2", "llama");
        var samples = new Option<int>("--samples") { Description = "Interleaved samples per weight type (the report takes medians).", DefaultValueFactory = _ => 7 };
        var kvCache = new Option<string?>("--kv-cache")
        {
            Description = "Sharpformer's KV cache type: f16 or f32 (default: f16 for f16 and quantized weights, f32 for f32; llama.cpp keeps its default f16).",
        };
        kvCache.AcceptOnlyFromAmong("f16", "f32");
        var command = new Command("decode", "GPT-2 or Llama prefill and decode tokens/s (batch 1 and 8) vs llama.cpp on the same weights, and decode speed as a fraction of the bandwidth bound.");
        foreach (var option in new Option[] { model, random, dtype, threads, prompt, generated, batch, arch, samples, kvCache })
        {
            command.Options.Add(option);
        }

        command.SetAction(parse =>
        {
            string[] args;
            try
            {
                args = HarnessArguments(
                    parse.GetValue(model), parse.GetValue(random), parse.GetValue(dtype)!, parse.GetValue(threads), parse.GetValue(prompt), parse.GetValue(generated), parse.GetValue(batch),
                    parse.GetValue(arch)!, parse.GetValue(samples), parse.GetValue(kvCache));
            }
            catch (ArgumentException ex)
            {
                Console.Error.WriteLine($"error: bench decode: {ex.Message}");
                return 2;
            }

            return Run(args, Console.Error);
        });
        return command;
    }

    /// <summary>The harness's command line (after <c>--</c>), validated.</summary>
    /// <exception cref="ArgumentException">Neither or both GPT-2 model sources, a model source with --arch llama, or a non-positive count.</exception>
    internal static string[] HarnessArguments(string? model, bool random124M, string dtype, int threads, int promptTokens, int newTokens, int batch, string arch = "gpt2", int samples = 7, string? kvCache = null)
    {
        if (arch == "llama")
        {
            if (model is not null || random124M)
            {
                throw new ArgumentException("--arch llama runs its own random TinyLlama-1.1B-shaped model: drop --model and --random-124m.");
            }
        }
        else if ((model is null) == !random124M)
        {
            throw new ArgumentException("pass exactly one of --model <hf-dir> and --random-124m.");
        }

        foreach (var (name, value) in new[] { ("--threads", threads), ("--prompt-tokens", promptTokens), ("--new-tokens", newTokens), ("--batch", batch), ("--samples", samples) })
        {
            if (value < 1)
            {
                throw new ArgumentException($"{name} must be at least 1 (got {value}).");
            }
        }

        var inv = CultureInfo.InvariantCulture;
        var args = new List<string> { "decode" };
        if (arch == "llama")
        {
            args.AddRange(["--arch", "llama"]);
        }
        else
        {
            args.AddRange(model is null ? ["--random-124m"] : ["--model", Path.GetFullPath(model)]);
        }

        args.AddRange(["--dtype", dtype, "--threads", threads.ToString(inv), "--prompt-tokens", promptTokens.ToString(inv), "--new-tokens", newTokens.ToString(inv), "--batch", batch.ToString(inv)]);
        if (samples != 7)
        {
            args.AddRange(["--samples", samples.ToString(inv)]);
        }

        if (kvCache is not null)
        {
            args.AddRange(["--kv-cache", kvCache]);
        }

        return [.. args];
    }

    private static int Run(string[] harnessArgs, TextWriter stderr)
    {
        // The same harness and lookup as bench encoder (SHARPFORMER_BENCH_PEERS, else a checkout above the current or
        // the program's folder).
        var project = BenchEncoderCommand.FindPeersProject();
        if (project is null)
        {
            stderr.WriteLine($"error: bench decode: cannot find {BenchEncoderCommand.PeersProject}; run inside the Sharpformer repository, or set SHARPFORMER_BENCH_PEERS to that .csproj.");
            return 2;
        }

        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
        foreach (var arg in new[] { "run", "-c", "Release", "--project", project, "--" }.Concat(harnessArgs))
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet for the benchmark harness.");
        process.WaitForExit();
        return process.ExitCode;
    }
}
