using System.CommandLine;
using System.Diagnostics;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer bench encoder --model &lt;hf-dir&gt; --onnx &lt;model.onnx&gt;</c>: Sharpformer's BertModel vs ONNX Runtime
/// in one process, same inputs and thread count, ms and ratio per row. ONNX Runtime is a peer used only for
/// measurement, so the product assembly does not reference it: this verb runs the benchmark program
/// benchmarks/Sharpformer.Bench.Peers (found by walking up from the current folder and from this executable, or named
/// by SHARPFORMER_BENCH_PEERS) with <c>dotnet run -c Release</c>, passing the options through and streaming its output.
/// <c>--dtype bf16|int8</c> runs Sharpformer's linear layers in that precision beside ONNX Runtime's F32 model;
/// <c>--breakdown</c> adds each row's time per op kind on both sides (Sharpformer's stage clock, ONNX Runtime's profiler).
/// </summary>
internal static class BenchEncoderCommand
{
    internal const string PeersProject = "benchmarks/Sharpformer.Bench.Peers/Sharpformer.Bench.Peers.csproj";

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The Hugging Face BERT folder (config.json + model.safetensors).", Required = true };
        var onnx = new Option<string>("--onnx") { Description = "The ONNX export of the same model.", Required = true };
        var threads = new Option<string>("--threads") { Description = "Comma-separated thread counts.", DefaultValueFactory = _ => "1,2" };
        var shapes = new Option<string>("--shapes") { Description = "Comma-separated B×T rows, e.g. 1x8,1x128,1x512,32x128.", DefaultValueFactory = _ => "1x8,1x128,1x512,32x128" };
        var repeat = new Option<int>("--repeat") { Description = "Timed samples per row and engine (0: about 1.5 s each, at least 5)." };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Sharpformer's linear layers in f32 (default), bf16 or int8 (dynamic quantization); ONNX Runtime runs the given model.onnx as it is (F32).",
            DefaultValueFactory = _ => "f32",
        };
        dtype.AcceptOnlyFromAmong("f32", "bf16", "int8");
        var breakdown = new Option<bool>("--breakdown")
        {
            Description = "After each row, the time per op kind: Sharpformer's forward stages and ONNX Runtime's profiler summed by op type (ms per forward).",
        };
        var command = new Command("encoder", "BERT encoder forward: Sharpformer vs ONNX Runtime, ms and ratio (runs benchmarks/Sharpformer.Bench.Peers).");
        command.Options.Add(model);
        command.Options.Add(onnx);
        command.Options.Add(threads);
        command.Options.Add(shapes);
        command.Options.Add(repeat);
        command.Options.Add(dtype);
        command.Options.Add(breakdown);
        command.SetAction(parse =>
        {
            string? project = FindPeersProject();
            if (project is null)
            {
                Console.Error.WriteLine(
                    $"bench encoder: cannot find {PeersProject}. Run from the Sharpformer repository, or set SHARPFORMER_BENCH_PEERS to that .csproj.");
                return 2;
            }

            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
            foreach (string arg in new[]
            {
                "run", "-c", "Release", "--project", project, "--", "encoder",
                "--model", Path.GetFullPath(parse.GetValue(model)!), "--onnx", Path.GetFullPath(parse.GetValue(onnx)!),
                "--threads", parse.GetValue(threads)!, "--shapes", parse.GetValue(shapes)!, "--repeat", parse.GetValue(repeat).ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--dtype", parse.GetValue(dtype)!,
            })
            {
                start.ArgumentList.Add(arg);
            }

            if (parse.GetValue(breakdown)) start.ArgumentList.Add("--breakdown");

            using var process = Process.Start(start)!;
            process.WaitForExit();
            return process.ExitCode;
        });
        return command;
    }

    /// <summary>The benchmark project: SHARPFORMER_BENCH_PEERS, else the first repository root above the current folder or this executable.</summary>
    internal static string? FindPeersProject()
    {
        if (Environment.GetEnvironmentVariable("SHARPFORMER_BENCH_PEERS") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : null;
        }

        return FindInRepository(PeersProject);
    }

    /// <summary>The file at <paramref name="relativePath"/> under the first repository root above the current folder or this executable, or null.</summary>
    internal static string? FindInRepository(string relativePath)
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, relativePath);
                if (File.Exists(candidate)) return candidate;
            }
        }

        return null;
    }
}
