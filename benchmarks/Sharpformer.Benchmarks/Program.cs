using BenchmarkDotNet.Running;

namespace Sharpformer.Benchmarks;

/// <summary>
/// Runs the BenchmarkDotNet suites: <c>dotnet run -c Release --project benchmarks/Sharpformer.Benchmarks -- --filter '*Gemm*'</c>,
/// the interleaved stopwatch harness <c>-- attention-training [rounds]</c> (<see cref="AttentionTrainingHarness"/>),
/// or the LoRA vs full fine-tuning memory report <c>-- lora-memory lora|full [steps] [batch] [tokens]</c> (<see cref="LoraMemoryHarness"/>).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "attention-training")
        {
            AttentionTrainingHarness.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 31);
            return;
        }

        if (args.Length > 1 && args[0] == "lora-memory")
        {
            var c = System.Globalization.CultureInfo.InvariantCulture;
            LoraMemoryHarness.Run(args[1], args.Length > 2 ? int.Parse(args[2], c) : 3, args.Length > 3 ? int.Parse(args[3], c) : 8, args.Length > 4 ? int.Parse(args[4], c) : 128);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
