using System.Diagnostics;
using System.Text;
using Sharpformer.IO.Fuzz;

// Modes:
//   (no arguments)          the afl-fuzz target: SharpFuzz's fork server feeds inputs to Target.Run.
//   --replay PATH...        runs every file (or folder of files) through Target.Run in-process, checking the allocation
//                           bound; exit code 1 on any exception other than the readers' format exceptions
//                           (SafeTensorsException, GgufFormatException, OnnxFormatException). CI replays the seed
//                           corpus and afl-fuzz's queue with it.
//   --make-corpus DIR       (re)writes the seed corpus: small valid files from our writer plus the upstream negative vectors.
if (args.Length == 0)
{
    SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        Target.Run(buffer.ToArray());
    });
    return 0;
}

if (args[0] == "--make-corpus" && args.Length == 2)
{
    Corpus.Write(args[1]);
    return 0;
}

if (args[0] == "--replay" && args.Length >= 2)
{
    return Replay(args.AsSpan(1));
}

Console.Error.WriteLine("usage: Sharpformer.IO.Fuzz [--replay PATH... | --make-corpus DIR]");
return 2;

static int Replay(ReadOnlySpan<string> paths)
{
    var files = new List<string>();
    foreach (var p in paths)
    {
        if (Directory.Exists(p))
        {
            files.AddRange(Directory.GetFiles(p).Where(f => !Path.GetFileName(f).StartsWith("README", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        }
        else
        {
            files.Add(p);
        }
    }

    int failures = 0;
    long worstRatio = 0;
    var clock = Stopwatch.StartNew();
    foreach (var file in files)
    {
        var bytes = File.ReadAllBytes(file);
        try
        {
            long allocated = Target.MeasureParseAllocation(bytes);
            long budget = Target.ParseAllocationBudget(bytes.Length);
            worstRatio = Math.Max(worstRatio, allocated * 100 / budget);
            if (allocated > budget)
            {
                throw new InvalidOperationException($"parsing allocated {allocated} bytes for a {bytes.Length}-byte input (budget {budget}).");
            }

            Target.Run(bytes);
        }
#pragma warning disable CA1031 // Any escaping exception is a finding to report, whatever its type.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failures++;
            Console.Error.WriteLine($"FAIL {file}: {e.GetType().FullName}: {e.Message}");
            Console.Error.WriteLine(e.StackTrace);
        }
    }

    Console.WriteLine(new StringBuilder()
        .Append($"replayed {files.Count} inputs in {clock.Elapsed.TotalSeconds:F1} s: {failures} failures; ")
        .Append($"worst parse allocation {worstRatio}% of budget (32 x input + 64 KiB)"));
    return failures == 0 ? 0 : 1;
}
