using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Sharpformer.Tensors.Threading;

/// <summary>
/// Dynamic-scheduling parallel loop for kernels. Work is cut into chunks that idle workers claim with an atomic counter,
/// so a core slowed by a noisy neighbour takes fewer chunks instead of stalling the loop (a static split loses 10–30% on a
/// shared 2-core host). The caller's thread always takes part, so a worker that wakes late only does less of the work.
/// Loops of one chunk, or with <see cref="MaxDegreeOfParallelism"/> 1, run inline on the caller with no hand-off.
/// </summary>
/// <remarks>
/// Workers are dedicated background threads, created on first use, that spin briefly after each loop (back-to-back
/// kernels find them awake) and then sleep. Running a loop allocates nothing. One loop runs on the pool at a time:
/// a loop started while another is running (from another thread, or nested inside a body) runs inline on its caller,
/// which is correct and never deadlocks.
/// </remarks>
public static class ParallelFor
{
    private static int _maxDegree = Environment.ProcessorCount;

    /// <summary>Upper bound on threads per loop, the caller included (default: <see cref="Environment.ProcessorCount"/>). 1 runs everything inline.</summary>
    public static int MaxDegreeOfParallelism
    {
        get => _maxDegree;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxDegree = value;
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) in chunks of <paramref name="grain"/>
    /// items. The caller's thread takes part; the call returns when every chunk is done and rethrows the first exception.
    /// When the loop runs inline, <paramref name="body"/> gets the whole range in one call.
    /// </summary>
    public static void For(int count, int grain, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0) return;
        grain = Math.Max(1, grain);
        int chunks = (int)(((long)count + grain - 1) / grain);
        int threads = Math.Min(_maxDegree, chunks);
        if (threads <= 1 || !WorkerPool.TryRun(count, grain, chunks, threads, body))
        {
            body(0, count);
        }
    }

    /// <summary>The shared worker threads and the one loop they serve at a time.</summary>
    private static class WorkerPool
    {
        /// <summary>How long a worker keeps polling for the next loop before it sleeps (≈ 50 µs).</summary>
        private static readonly long SpinTicks = Math.Max(1, Stopwatch.Frequency / 20_000);

        private static readonly Job TheJob = new();
        private static readonly SemaphoreSlim Wake = new(0);
        private static readonly Lock GrowLock = new();
        private static int _busy;
        private static int _generation;
        private static int _threadCount;

        public static bool TryRun(int count, int grain, int chunks, int threads, Action<int, int> body)
        {
            if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            {
                return false;
            }

            Job job = TheJob;
            try
            {
                int helpers = threads - 1;
                EnsureThreads(helpers);
                job.Reset(count, grain, chunks, body);

                // Publish: the fields above become visible to any worker that claims a slot (Interlocked is a full fence).
                Volatile.Write(ref job.Slots, helpers);
                Interlocked.Increment(ref _generation);
                int sleeping = helpers - Wake.CurrentCount;
                if (sleeping > 0)
                {
                    Wake.Release(sleeping);
                }

                job.RunChunks();

                // Close the job to latecomers; whoever claimed a slot before this is counted and waited for.
                int unclaimed = Interlocked.Exchange(ref job.Slots, int.MinValue / 2);
                int joined = helpers - Math.Max(unclaimed, 0);
                var spinner = default(SpinWait);
                while (Volatile.Read(ref job.Finished) < joined)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                }

                Exception? error = job.Error;
                job.Clear();
                if (error is not null)
                {
                    ExceptionDispatchInfo.Throw(error);
                }
            }
            finally
            {
                Volatile.Write(ref _busy, 0);
            }

            return true;
        }

        private static void EnsureThreads(int wanted)
        {
            if (Volatile.Read(ref _threadCount) >= wanted) return;
            lock (GrowLock)
            {
                while (_threadCount < wanted)
                {
                    var thread = new Thread(WorkerLoop) { IsBackground = true, Name = $"Sharpformer worker {_threadCount + 1}" };
                    thread.Start();
                    _threadCount++;
                }
            }
        }

        private static void WorkerLoop()
        {
            int seen = Volatile.Read(ref _generation);
            while (true)
            {
                // Poll for a new loop for a short while: kernels often run back to back (pack, then multiply).
                long deadline = Stopwatch.GetTimestamp() + SpinTicks;
                while (Volatile.Read(ref _generation) == seen && Stopwatch.GetTimestamp() < deadline)
                {
                    Thread.SpinWait(20);
                }

                if (Volatile.Read(ref _generation) == seen)
                {
                    Wake.Wait();
                }

                seen = Volatile.Read(ref _generation);
                Job job = TheJob;
                if (Interlocked.Decrement(ref job.Slots) >= 0)
                {
                    job.RunChunks();
                    Interlocked.Increment(ref job.Finished);
                }
            }
        }
    }

    /// <summary>One loop: its range, its chunk counter, and the helpers that joined it.</summary>
    private sealed class Job
    {
        public int Slots = int.MinValue / 2;
        public int Finished;
        public Exception? Error;
        private int _next;
        private int _count;
        private int _grain;
        private int _chunks;
        private Action<int, int>? _body;

        public void Reset(int count, int grain, int chunks, Action<int, int> body)
        {
            _count = count;
            _grain = grain;
            _chunks = chunks;
            _body = body;
            _next = -1;
            Error = null;
            Finished = 0;
        }

        public void Clear() => _body = null;

        public void RunChunks()
        {
            Action<int, int> body = _body!;
            try
            {
                int chunk;
                while ((chunk = Interlocked.Increment(ref _next)) < _chunks)
                {
                    int start = chunk * _grain;
                    body(start, (int)Math.Min(_count, (long)start + _grain));
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref Error, e, null);
                Volatile.Write(ref _next, _chunks); // stop handing out chunks
            }
        }
    }
}
