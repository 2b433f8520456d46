using System.Diagnostics;
using System.Text;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// Starts the built <c>sharpformer</c> as N ranks under Open MPI's <c>mpirun</c> on this machine, over TCP on the
/// loopback interface (as ranks on several machines talk), oversubscribed so two ranks run on any core count. CI installs
/// openmpi-bin (.ci/run): these tests fail, never skip, without it.
/// </summary>
internal sealed class MpiRun : IDisposable
{
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private MpiRun(Process process) => Process = process;

    public Process Process { get; }

    public string Stdout
    {
        get
        {
            lock (_stdout) return _stdout.ToString();
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr) return _stderr.ToString();
        }
    }

    /// <summary>Starts <c>mpirun -np <paramref name="ranks"/> dotnet sharpformer.dll <paramref name="args"/></c>.</summary>
    public static MpiRun Start(int ranks, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo", "--mca", "pml", "ob1" })
        {
            start.ArgumentList.Add(a);
        }

        // Containers (CI) often run as root, which mpirun refuses unless told that it is meant.
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        start.Environment["SHARPFORMER_VERBOSE"] = "0";
        start.ArgumentList.Add("dotnet");
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sharpformer.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("mpirun was not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev); CI's .ci/run does.", e);
        }

        var run = new MpiRun(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (run._stdout) run._stdout.AppendLine(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (run._stderr) run._stderr.AppendLine(e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return run;
    }

    /// <summary>Runs to the end (at most <paramref name="timeout"/>) and returns the exit code and both outputs.</summary>
    public static (int Code, string Stdout, string Stderr) Run(int ranks, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        using var run = Start(ranks, args);
        return run.Wait(timeout ?? TimeSpan.FromMinutes(3));
    }

    public (int Code, string Stdout, string Stderr) Wait(TimeSpan timeout)
    {
        if (!Process.WaitForExit(timeout))
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit();
            throw new TimeoutException($"mpirun did not finish within {timeout}; stderr so far:\n{Stderr}");
        }

        Process.WaitForExit(); // drain the output handlers
        return (Process.ExitCode, Stdout, Stderr);
    }

    /// <summary>The process id of rank <paramref name="rank"/>: the child of mpirun whose environment says so.</summary>
    public int? RankPid(int rank)
    {
        foreach (var task in Directory.GetDirectories($"/proc/{Process.Id}/task"))
        {
            string children = File.Exists(Path.Combine(task, "children")) ? File.ReadAllText(Path.Combine(task, "children")) : string.Empty;
            foreach (var pid in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    var environment = File.ReadAllText($"/proc/{pid}/environ").Split('\0');
                    if (environment.Contains($"OMPI_COMM_WORLD_RANK={rank}")) return int.Parse(pid, System.Globalization.CultureInfo.InvariantCulture);
                }
                catch (IOException)
                {
                    // The child has gone.
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }

        return null;
    }

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit();
        }

        Process.Dispose();
    }
}
