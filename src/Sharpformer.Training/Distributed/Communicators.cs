namespace Sharpformer.Training.Distributed;

/// <summary>Picks the communicator of this process: MPI when launched by <c>mpirun</c>, else the single-process group.</summary>
public static class Communicators
{
    /// <summary>The environment variable Open MPI's launcher sets to the number of ranks.</summary>
    public const string WorldSizeVariable = "OMPI_COMM_WORLD_SIZE";

    /// <summary>The number of ranks mpirun started on this machine (<c>OMPI_COMM_WORLD_LOCAL_SIZE</c>); 1 without mpirun.</summary>
    public static int LocalRanks =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n > 0 ? n : 1;

    /// <summary>True when this process was started by Open MPI's <c>mpirun</c>/<c>mpiexec</c> (<c>OMPI_COMM_WORLD_SIZE</c> is set).</summary>
    public static bool LaunchedByMpirun => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(WorldSizeVariable));

    /// <summary>
    /// MPI_COMM_WORLD when launched by <c>mpirun</c> or when <paramref name="distributed"/> asks for it, else
    /// <see cref="SingleProcessCommunicator.Instance"/>.
    /// </summary>
    /// <param name="distributed">Require MPI (<c>--distributed</c>): an error when the process was not started by mpirun.</param>
    /// <returns>The communicator; dispose it at the end of the process (MPI_Finalize).</returns>
    /// <exception cref="InvalidOperationException"><paramref name="distributed"/> is set but the process was not started by mpirun.</exception>
    /// <exception cref="DllNotFoundException">mpirun started the process but libmpi.so.40 cannot be loaded.</exception>
    public static ICommunicator FromEnvironment(bool distributed = false)
    {
        if (LaunchedByMpirun) return MpiCommunicator.Initialize();
        if (distributed)
        {
            throw new InvalidOperationException($"--distributed: this process was not started by Open MPI's launcher ({WorldSizeVariable} is not set); run it as 'mpirun -np N sharpformer …', or drop --distributed.");
        }

        return SingleProcessCommunicator.Instance;
    }
}
