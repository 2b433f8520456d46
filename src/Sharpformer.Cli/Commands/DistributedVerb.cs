using System.CommandLine;
using System.Runtime.InteropServices;
using Sharpformer.Training.Distributed;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// Runs a verb as one rank of <c>mpirun -np N sharpformer …</c> (or alone): picks the communicator, keeps the progress
/// output to rank 0, and makes a failure on any rank stop the whole job with a clear line on every rank — the failing
/// rank names itself and calls MPI_Abort; the ranks that mpirun then terminates (SIGTERM) say why before they go.
/// MPI_Finalize runs at the end of a successful run.
/// </summary>
internal static class DistributedVerb
{
    /// <summary><c>--distributed</c>: require mpirun (otherwise detected from OMPI_COMM_WORLD_SIZE).</summary>
    public static Option<bool> Option() => new("--distributed")
    {
        Description = "Run as one rank of an MPI job ('mpirun -np N sharpformer …'); detected from mpirun's environment without the flag, and an error without mpirun.",
    };

    /// <summary>Runs <paramref name="body"/> with this process's communicator; a nonzero exit on one rank ends every rank.</summary>
    /// <param name="verb">The verb's name, for messages.</param>
    /// <param name="distributed">Whether <c>--distributed</c> was given.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="afterFailure">What a rank that is stopped because another failed should know (e.g. that the last checkpoint is intact).</param>
    /// <param name="body">The verb, given the communicator; returns its exit code.</param>
    /// <returns>The exit code.</returns>
    public static async Task<int> RunAsync(string verb, bool distributed, TextWriter error, string afterFailure, Func<ICommunicator, Task<int>> body)
    {
        ICommunicator communicator;
        try
        {
            communicator = Communicators.FromEnvironment(distributed);
        }
        catch (Exception e) when (e is InvalidOperationException or DllNotFoundException)
        {
            await error.WriteLineAsync($"error: {verb}: {CliErrors.OneLine(e.Message)}").ConfigureAwait(false);
            return ExitCodes.InputOrModel;
        }

        if (communicator.Size == 1)
        {
            try
            {
                return await body(communicator).ConfigureAwait(false);
            }
            finally
            {
                communicator.Dispose();
            }
        }

        string who = $"rank {communicator.Rank} of {communicator.Size}";
        bool aborting = false;
        using var terminated = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            if (!Volatile.Read(ref aborting))
            {
                error.WriteLine($"error: {verb} ({who}): stopped because another rank of the job failed or was killed (mpirun is ending the job); {afterFailure}");
            }
        });
        int code;
        try
        {
            code = await body(communicator).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            code = CliErrors.Report(e, error, verbose: false);
        }

        if (code != 0)
        {
            await error.WriteLineAsync($"error: {verb} ({who}) failed with exit code {code}; stopping every rank of the job (MPI_Abort). {afterFailure}").ConfigureAwait(false);
            await error.FlushAsync().ConfigureAwait(false);
            Volatile.Write(ref aborting, true);
            communicator.Abort(code);
        }

        communicator.Dispose();
        return code;
    }
}
