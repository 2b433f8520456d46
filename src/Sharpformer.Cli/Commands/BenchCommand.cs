using System.CommandLine;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer bench ...</c>: side-by-side measurements; each sub-verb adds itself here.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure kernels and models on this machine, with ratios against the hardware peak or a peer engine.");
        bench.Subcommands.Add(BenchGemmCommand.Create());
        bench.Subcommands.Add(BenchDecodeCommand.Create());
        bench.Subcommands.Add(BenchEncoderCommand.Create());
        bench.Subcommands.Add(BenchTrainCommand.Create());
        bench.Subcommands.Add(BenchServeCommand.Create());
        return bench;
    }
}
