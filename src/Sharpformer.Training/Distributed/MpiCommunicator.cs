using System.Runtime.InteropServices;

namespace Sharpformer.Training.Distributed;

/// <summary>
/// MPI_COMM_WORLD over Open MPI (our own binding, see docs/distributed.md): what <c>mpirun -np N sharpformer …</c> runs
/// on. Initialised with MPI_THREAD_MULTIPLE when the library offers it (else SERIALIZED), so a communication thread can
/// all-reduce gradient buckets while backward runs; every call is serialised by a lock, so no two threads are ever
/// inside MPI at once. Dispose calls MPI_Finalize. One instance per process: MPI cannot be initialised twice.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    // Chunk long buffers so each call's element count fits MPI's int.
    private const int MaxCount = 1 << 30;

    private static MpiCommunicator? _instance;
    private readonly MpiNative.Api _mpi;
    private readonly Lock _lock = new();
    private bool _finalized;

    private MpiCommunicator(MpiNative.Api mpi, int provided)
    {
        _mpi = mpi;
        ThreadLevel = provided;
        int rank, size;
        Check(_mpi.CommRank(_mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(_mpi.CommSize(_mpi.CommWorld, &size), "MPI_Comm_size");
        Rank = rank;
        Size = size;
    }

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <summary>The thread support MPI granted (0 single … 3 multiple).</summary>
    public int ThreadLevel { get; }

    /// <inheritdoc/>
    public bool SupportsCommunicationThread => ThreadLevel >= MpiNative.ThreadSerialized;

    /// <summary>Initialises MPI once per process (MPI_Init_thread) and returns MPI_COMM_WORLD.</summary>
    /// <returns>The world communicator.</returns>
    /// <exception cref="DllNotFoundException">Open MPI's libmpi.so.40 is not installed; the message says how to install it.</exception>
    public static MpiCommunicator Initialize()
    {
        if (_instance is { } existing) return existing;
        var mpi = MpiNative.Functions;
        int initialized;
        Check(mpi.Initialized(&initialized), "MPI_Initialized");
        int provided = MpiNative.ThreadSingle;
        if (initialized == 0)
        {
            Check(mpi.InitThread(null, 0, MpiNative.ThreadMultiple, &provided), "MPI_Init_thread");
        }

        _instance = new MpiCommunicator(mpi, provided);
        return _instance;
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values)
    {
        lock (_lock)
        {
            for (int start = 0; start < values.Length; start += MaxCount)
            {
                var chunk = values.Slice(start, Math.Min(MaxCount, values.Length - start));
                fixed (float* p = chunk)
                {
                    Check(_mpi.Allreduce(MpiNative.Api.InPlace, p, chunk.Length, _mpi.Float, _mpi.Sum, _mpi.CommWorld), "MPI_Allreduce");
                }
            }
        }
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values)
    {
        lock (_lock)
        {
            for (int start = 0; start < values.Length; start += MaxCount)
            {
                var chunk = values.Slice(start, Math.Min(MaxCount, values.Length - start));
                fixed (double* p = chunk)
                {
                    Check(_mpi.Allreduce(MpiNative.Api.InPlace, p, chunk.Length, _mpi.Double, _mpi.Sum, _mpi.CommWorld), "MPI_Allreduce");
                }
            }
        }
    }

    /// <inheritdoc/>
    public void Broadcast(Span<byte> values, int root)
    {
        CheckRoot(root);
        lock (_lock)
        {
            for (int start = 0; start < values.Length; start += MaxCount)
            {
                var chunk = values.Slice(start, Math.Min(MaxCount, values.Length - start));
                fixed (byte* p = chunk)
                {
                    Check(_mpi.Bcast(p, chunk.Length, _mpi.Byte, root, _mpi.CommWorld), "MPI_Bcast");
                }
            }
        }
    }

    /// <inheritdoc/>
    public void Broadcast(Span<float> values, int root) => Broadcast(MemoryMarshal.AsBytes(values), root);

    /// <inheritdoc/>
    public byte[][]? Gather(ReadOnlySpan<byte> values, int root)
    {
        CheckRoot(root);
        lock (_lock)
        {
            int mine = values.Length;
            var counts = new int[Size];
            fixed (int* c = counts)
            {
                Check(_mpi.Gather(&mine, 1, _mpi.Int, c, 1, _mpi.Int, root, _mpi.CommWorld), "MPI_Gather");
            }

            var displacements = new int[Size];
            long total = 0;
            if (Rank == root)
            {
                for (int r = 0; r < Size; r++)
                {
                    displacements[r] = checked((int)total);
                    total += counts[r];
                }
            }

            var all = new byte[Rank == root ? checked((int)total) : 0];
            fixed (byte* send = values)
            fixed (byte* receive = all)
            fixed (int* c = counts)
            fixed (int* d = displacements)
            {
                Check(_mpi.Gatherv(send, mine, _mpi.Byte, receive, c, d, _mpi.Byte, root, _mpi.CommWorld), "MPI_Gatherv");
            }

            if (Rank != root) return null;
            var result = new byte[Size][];
            for (int r = 0; r < Size; r++) result[r] = all.AsSpan(displacements[r], counts[r]).ToArray();
            return result;
        }
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        lock (_lock)
        {
            Check(_mpi.Barrier(_mpi.CommWorld), "MPI_Barrier");
        }
    }

    /// <inheritdoc/>
    public void Abort(int exitCode)
    {
        // No lock: another thread may be blocked inside a collective that will never complete.
        _mpi.Abort(_mpi.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    /// <summary>MPI_Finalize (once; a finalized MPI cannot start again in this process).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_finalized) return;
            _finalized = true;
            int done;
            _mpi.Finalized(&done);
            if (done == 0) _mpi.Finalize();
        }
    }

    private void CheckRoot(int root)
    {
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), root, $"root must be a rank in [0, {Size}).");
    }

    private static void Check(int code, string call)
    {
        if (code != 0) throw new InvalidOperationException($"{call} failed with MPI error code {code}; the job cannot continue.");
    }
}
