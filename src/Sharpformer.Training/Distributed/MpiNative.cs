using System.Runtime.InteropServices;

namespace Sharpformer.Training.Distributed;

/// <summary>
/// A thin binding of the few MPI calls we use, over Open MPI's <c>libmpi.so.40</c> (Open MPI 4.x; 5.x keeps the soname).
/// MPI.NET 1.4.0 cannot serve here: it binds to <c>msmpi.dll</c> and MS-MPI's integer handles, while Open MPI's handles
/// are pointers to exported globals (<c>ompi_mpi_comm_world</c>, <c>ompi_mpi_float</c>, <c>ompi_mpi_op_sum</c>), which we
/// resolve with <see cref="NativeLibrary.GetExport"/>. The library is opened with <c>RTLD_GLOBAL</c> first, because
/// Open MPI's plugins (dlopen'ed by libmpi itself) resolve libmpi's symbols from the global scope.
/// </summary>
internal static unsafe partial class MpiNative
{
    public const string LibraryName = "libmpi.so.40";
    public const int ThreadSingle = 0;
    public const int ThreadSerialized = 2;
    public const int ThreadMultiple = 3;

    private const int RtldNow = 2;
    private const int RtldGlobal = 0x100;

    private static readonly Lazy<Api> Loaded = new(Load);

    public static Api Functions => Loaded.Value;

    /// <summary>True when libmpi.so.40 can be loaded on this machine.</summary>
    public static bool TryLoad(out string? error)
    {
        try
        {
            _ = Loaded.Value;
            error = null;
            return true;
        }
        catch (DllNotFoundException e)
        {
            error = e.Message;
            return false;
        }
    }

    private static Api Load()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new DllNotFoundException($"MPI: this binding is for Open MPI on Linux ({LibraryName}); on this OS run without mpirun.");
        }

        nint handle = dlopen(LibraryName, RtldNow | RtldGlobal);
        if (handle == 0)
        {
            throw new DllNotFoundException($"MPI: cannot load {LibraryName} ({Marshal.PtrToStringUTF8(dlerror()) ?? "unknown error"}); install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev).");
        }

        return new Api(handle);
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint dlopen(string file, int mode);

    [LibraryImport("libc")]
    private static partial nint dlerror();

    /// <summary>The resolved entry points and predefined handles.</summary>
    internal sealed class Api
    {
        public Api(nint library)
        {
            nint Get(string name) => NativeLibrary.GetExport(library, name);
            InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Get("MPI_Init_thread");
            Initialized = (delegate* unmanaged<int*, int>)Get("MPI_Initialized");
            Finalized = (delegate* unmanaged<int*, int>)Get("MPI_Finalized");
            Finalize = (delegate* unmanaged<int>)Get("MPI_Finalize");
            CommRank = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_rank");
            CommSize = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_size");
            Allreduce = (delegate* unmanaged<nint, void*, int, nint, nint, nint, int>)Get("MPI_Allreduce");
            Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Get("MPI_Bcast");
            Gather = (delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, int>)Get("MPI_Gather");
            Gatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, int, nint, int>)Get("MPI_Gatherv");
            Barrier = (delegate* unmanaged<nint, int>)Get("MPI_Barrier");
            Abort = (delegate* unmanaged<nint, int, int>)Get("MPI_Abort");
            CommWorld = Get("ompi_mpi_comm_world");
            Float = Get("ompi_mpi_float");
            Double = Get("ompi_mpi_double");
            Byte = Get("ompi_mpi_byte");
            Int = Get("ompi_mpi_int");
            Sum = Get("ompi_mpi_op_sum");
        }

        /// <summary>MPI_IN_PLACE in Open MPI.</summary>
        public static nint InPlace => 1;

        public delegate* unmanaged<int*, nint, int, int*, int> InitThread { get; }

        public delegate* unmanaged<int*, int> Initialized { get; }

        public delegate* unmanaged<int*, int> Finalized { get; }

        public delegate* unmanaged<int> Finalize { get; }

        public delegate* unmanaged<nint, int*, int> CommRank { get; }

        public delegate* unmanaged<nint, int*, int> CommSize { get; }

        public delegate* unmanaged<nint, void*, int, nint, nint, nint, int> Allreduce { get; }

        public delegate* unmanaged<void*, int, nint, int, nint, int> Bcast { get; }

        public delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, int> Gather { get; }

        public delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, int, nint, int> Gatherv { get; }

        public delegate* unmanaged<nint, int> Barrier { get; }

        public delegate* unmanaged<nint, int, int> Abort { get; }

        public nint CommWorld { get; }

        public nint Float { get; }

        public nint Double { get; }

        public nint Byte { get; }

        public nint Int { get; }

        public nint Sum { get; }
    }
}
