using BenchmarkDotNet.Running;

namespace Sharpformer.Benchmarks;

/// <summary>
/// Runs the BenchmarkDotNet suites: <c>dotnet run -c Release --project benchmarks/Sharpformer.Benchmarks -- --filter '*Gemm*'</c>,
/// or the interleaved stopwatch harness <c>-- attention-training [rounds]</c> (<see cref="AttentionTrainingHarness"/>).
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

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
