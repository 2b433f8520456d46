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
/// Workers are dedicated background threads, created on first use, that poll for the next loop for
/// <see cref="WorkerSpin"/> after each one (kernels separated by short serial work find them awake) and then sleep.
/// Running a loop allocates nothing. One loop runs on the pool at a time: a loop started while another is running
/// (from another thread, or nested inside a body) runs inline on its caller, which is correct and never deadlocks.
/// </remarks>
public static class ParallelFor
{
    private static int _maxDegree = Environment.ProcessorCount;

    private static long _spinTicks = Stopwatch.Frequency / 1000;

    /// <summary>
    /// How long an idle worker keeps polling for the next loop before it sleeps (default 1 ms; <see cref="TimeSpan.Zero"/>
    /// sleeps at once). A sleeping worker joins the next loop only after the operating system wakes it, which on a
    /// virtual machine takes 50–500 µs: the serial work between the kernels of a training step or a decode step (graph
    /// bookkeeping, allocation, small ops) often lasts 50 µs–1 ms, so a shorter poll leaves the caller alone at the start
    /// of many kernels. Polling burns the worker's core meanwhile; lower it when other work shares the cores.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or longer than one second.</exception>
    public static TimeSpan WorkerSpin
    {
        get => Stopwatch.GetElapsedTime(0, Volatile.Read(ref _spinTicks));
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, TimeSpan.FromSeconds(1));
            Volatile.Write(ref _spinTicks, (long)(value.TotalSeconds * Stopwatch.Frequency));
        }
    }

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

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) in chunks of <paramref name="grain"/>
    /// items, like <see cref="For"/>, but each thread owns a contiguous share of the chunks (the caller the first, the
    /// next thread the one after it, …) and takes its own chunks front to back: one thread reads one sequential stream
    /// across its chunks, so a memory-bound body's stream (and its software prefetches, which run ahead into the next
    /// chunk) carries on from chunk to chunk instead of starting again at each. A thread whose share is done takes
    /// the other shares' remaining chunks from their back ends, one at a time, so a slow or late thread still gets
    /// help (the scheduling stays dynamic at the tail). When the loop runs inline, <paramref name="body"/> gets the
    /// whole range in one call.
    /// </summary>
    public static void ForShares(int count, int grain, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0) return;
        grain = Math.Max(1, grain);
        int chunks = (int)(((long)count + grain - 1) / grain);
        int threads = Math.Min(_maxDegree, chunks);
        if (threads <= 1 || !WorkerPool.TryRun(count, grain, chunks, threads, body, shares: true))
        {
            body(0, count);
        }
    }

    /// <summary>The shared worker threads and the one loop they serve at a time.</summary>
    private static class WorkerPool
    {
        private static readonly Job TheJob = new();
        private static readonly SemaphoreSlim Wake = new(0);
        private static readonly Lock GrowLock = new();
        private static int _busy;
        private static int _generation;
        private static int _threadCount;

        public static bool TryRun(int count, int grain, int chunks, int threads, Action<int, int> body, bool shares = false)
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
                job.Helpers = helpers;
                job.Reset(count, grain, chunks, body, shares ? threads : 0);

                // Publish: the fields above become visible to any worker that claims a slot (Interlocked is a full fence).
                Volatile.Write(ref job.Slots, helpers);
                Interlocked.Increment(ref _generation);
                int sleeping = helpers - Wake.CurrentCount;
                if (sleeping > 0)
                {
                    Wake.Release(sleeping);
                }

                job.RunChunks(0);

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
                // Poll for a new loop for a while: kernels often run back to back or with a little serial work between.
                long deadline = Stopwatch.GetTimestamp() + Volatile.Read(ref _spinTicks);
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
                int slot = Interlocked.Decrement(ref job.Slots);
                if (slot >= 0)
                {
                    // Slots counts down from the helper count: the first helper in is thread 1, the next 2, …
                    job.RunChunks(job.Helpers - slot);
                    Interlocked.Increment(ref job.Finished);
                }
            }
        }
    }

    /// <summary>One loop: its range, its chunk counter (or its threads' shares), and the helpers that joined it.</summary>
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

        /// <summary>Threads that own a share of the chunks (<see cref="ForShares"/>), or 0 for one counter over all of them.</summary>
        private int _shareCount;

        /// <summary>Per share, its next chunk (low 32 bits) and its end (high 32 bits), one share per 64-byte line.</summary>
        private long[] _shares = new long[8 * 2];

        /// <summary>Set when a body throws: no further chunk is handed out.</summary>
        private volatile bool _stop;

        /// <summary>The helper threads the loop is published to; the helper that claims the i-th slot is thread i.</summary>
        public int Helpers;

        /// <summary>Sets up a loop; <paramref name="shares"/> > 0 splits the chunks into that many contiguous shares, share t owned by thread t.</summary>
        public void Reset(int count, int grain, int chunks, Action<int, int> body, int shares)
        {
            _count = count;
            _grain = grain;
            _chunks = chunks;
            _body = body;
            _next = -1;
            _stop = false;
            Error = null;
            Finished = 0;
            if (_shares.Length < 8 * shares)
            {
                _shares = new long[8 * shares];
            }

            for (var t = 0; t < shares; t++)
            {
                _shares[8 * t] = Pack((int)((long)chunks * t / shares), (int)((long)chunks * (t + 1) / shares));
            }

            _shareCount = shares;
        }

        public void Clear() => _body = null;

        /// <summary>Runs chunks on thread <paramref name="thread"/> (0 the caller) until none is left.</summary>
        public void RunChunks(int thread)
        {
            Action<int, int> body = _body!;
            try
            {
                if (_shareCount > 0)
                {
                    RunShares(thread, body);
                    return;
                }

                int chunk;
                while ((chunk = Interlocked.Increment(ref _next)) < _chunks)
                {
                    Run(body, chunk);
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref Error, e, null);
                Volatile.Write(ref _next, _chunks); // stop handing out chunks
                _stop = true;
            }
        }

        /// <summary>A share's next chunk and end in one word: <paramref name="front"/> in the low 32 bits, <paramref name="back"/> in the high.</summary>
        private static long Pack(int front, int back) => (long)(uint)front | ((long)back << 32);

        private void Run(Action<int, int> body, int chunk)
        {
            int start = chunk * _grain;
            body(start, (int)Math.Min(_count, (long)start + _grain));
        }

        /// <summary>Thread <paramref name="thread"/>'s own share front to back, then the other shares' chunks from their back ends.</summary>
        private void RunShares(int thread, Action<int, int> body)
        {
            int shares = _shareCount, chunk;
            if (thread < shares)
            {
                while (!_stop && (chunk = Take(thread, fromFront: true)) >= 0)
                {
                    Run(body, chunk);
                }
            }

            // Then help: the next share first (its owner was the last to start), one chunk at a time from its back.
            for (var k = 1; k < shares && !_stop; k++)
            {
                int victim = (thread + k) % shares;
                while (!_stop && (chunk = Take(victim, fromFront: false)) >= 0)
                {
                    Run(body, chunk);
                }
            }
        }

        /// <summary>Claims share <paramref name="share"/>'s next chunk from its front or its back; −1 when it is empty.</summary>
        private int Take(int share, bool fromFront)
        {
            ref long slot = ref _shares[8 * share];
            while (true)
            {
                long seen = Volatile.Read(ref slot);
                int front = (int)seen, back = (int)(seen >> 32);
                if (front >= back)
                {
                    return -1;
                }

                long claimed = fromFront ? Pack(front + 1, back) : Pack(front, back - 1);
                if (Interlocked.CompareExchange(ref slot, claimed, seen) == seen)
                {
                    return fromFront ? front : back - 1;
                }
            }
        }
    }
}
