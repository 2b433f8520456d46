using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests;

// Tests here and in GemmTests change ParallelFor.MaxDegreeOfParallelism, a process-wide setting: one collection runs them one at a time.
[Collection("ParallelFor degree")]
public class ParallelForTests
{
    [Theory]
    [InlineData(0, 4)]
    [InlineData(1, 4)]
    [InlineData(1000, 7)]
    [InlineData(4096, 1)]
    public void For_VisitsEveryIndexExactlyOnce(int count, int grain)
    {
        var hits = new int[count];
        ParallelFor.For(count, grain, (start, end) =>
        {
            for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void For_RethrowsWorkerException()
    {
        // The loop runs inline with the whole range when the pool is busy with another test's loop, so test the range, not its start.
        var e = Assert.Throws<InvalidOperationException>(() => ParallelFor.For(100, 1, (s, end) =>
        {
            if (s <= 57 && 57 < end) throw new InvalidOperationException("chunk 57");
        }));
        Assert.Equal("chunk 57", e.Message);
    }

    [Fact]
    public void For_NestedLoop_RunsInlineAndVisitsEveryIndex()
    {
        var hits = new int[64 * 32];
        ParallelFor.For(64, 1, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                int row = i;
                ParallelFor.For(32, 4, (s, e) =>
                {
                    for (int j = s; j < e; j++) Interlocked.Increment(ref hits[(row * 32) + j]);
                });
            }
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void For_ConcurrentCallersFromManyThreads_EachVisitsEveryIndex()
    {
        // Only one loop uses the workers at a time; the others run inline. All must finish and be complete.
        const int Callers = 6, Count = 5000;
        var hits = new int[Callers, Count];
        Parallel.For(0, Callers, new ParallelOptions { MaxDegreeOfParallelism = Callers }, caller =>
        {
            for (int round = 0; round < 20; round++)
            {
                ParallelFor.For(Count, 64, (start, end) =>
                {
                    for (int i = start; i < end; i++) Interlocked.Increment(ref hits[caller, i]);
                });
            }
        });
        foreach (int h in hits) Assert.Equal(20, h);
    }

    [Fact]
    public void For_MaxDegreeOne_RunsWholeRangeOnCallerThread()
    {
        int saved = ParallelFor.MaxDegreeOfParallelism;
        try
        {
            ParallelFor.MaxDegreeOfParallelism = 1;
            int caller = Environment.CurrentManagedThreadId, calls = 0;
            ParallelFor.For(1000, 10, (start, end) =>
            {
                Assert.Equal(caller, Environment.CurrentManagedThreadId);
                Assert.Equal((0, 1000), (start, end));
                calls++;
            });
            Assert.Equal(1, calls);
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5000)]
    public void WorkerSpin_AnyPolicy_LoopsSeparatedByPausesVisitEveryIndex(int spinMicroseconds)
    {
        // Zero: the worker sleeps after every loop and each loop has to wake it; 5 ms: it is still polling when the next comes.
        TimeSpan saved = ParallelFor.WorkerSpin;
        try
        {
            ParallelFor.WorkerSpin = TimeSpan.FromMicroseconds(spinMicroseconds);
            for (int round = 0; round < 30; round++)
            {
                var hits = new int[3000];
                ParallelFor.For(hits.Length, 16, (start, end) =>
                {
                    for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
                });
                Assert.All(hits, h => Assert.Equal(1, h));
                if (round % 3 == 0) Thread.Sleep(2); // long enough for a worker with a short poll to fall asleep
            }
        }
        finally
        {
            ParallelFor.WorkerSpin = saved;
        }
    }

    [Fact]
    public void WorkerSpin_RoundTripsAndRejectsNegativeOrOverOneSecond()
    {
        TimeSpan saved = ParallelFor.WorkerSpin;
        try
        {
            Assert.Equal(1, saved.TotalMilliseconds, 3);
            ParallelFor.WorkerSpin = TimeSpan.FromMicroseconds(250);
            Assert.Equal(250, ParallelFor.WorkerSpin.TotalMicroseconds, 1);
            ParallelFor.WorkerSpin = TimeSpan.Zero;
            Assert.Equal(TimeSpan.Zero, ParallelFor.WorkerSpin);
            Assert.Throws<ArgumentOutOfRangeException>(() => ParallelFor.WorkerSpin = TimeSpan.FromTicks(-1));
            Assert.Throws<ArgumentOutOfRangeException>(() => ParallelFor.WorkerSpin = TimeSpan.FromSeconds(2));
            Assert.Equal(TimeSpan.Zero, ParallelFor.WorkerSpin);
        }
        finally
        {
            ParallelFor.WorkerSpin = saved;
        }
    }

    [Theory]
    [InlineData(0, 4)]
    [InlineData(1, 4)]
    [InlineData(5, 1)]
    [InlineData(1000, 7)]
    [InlineData(4096, 1)]
    [InlineData(4096, 4096)]
    public void ForShares_VisitsEveryIndexExactlyOnce(int count, int grain)
    {
        var hits = new int[count];
        ParallelFor.ForShares(count, grain, (start, end) =>
        {
            for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void ForShares_UnevenWork_VisitsEveryIndexExactlyOnce()
    {
        // Chunks of very different cost: the threads' shares finish at different times and the rest is taken from their back ends.
        const int Count = 2000;
        var hits = new int[Count];
        for (int round = 0; round < 20; round++)
        {
            ParallelFor.ForShares(Count, 10, (start, end) =>
            {
                if (start % 300 == 0) Thread.SpinWait(20_000);
                for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
            });
        }

        Assert.All(hits, h => Assert.Equal(20, h));
    }

    [Fact]
    public void ForShares_CallerStartsAtTheFront()
    {
        // The caller owns the first share (or, inline, the whole range): the first chunk it runs is chunk 0. Others steal
        // a share from its back end, so on a loaded machine a caller descheduled long enough may find every chunk taken
        // and run none (first stays −1, as seen once in CI); it never starts anywhere else.
        int caller = Environment.CurrentManagedThreadId;
        for (int round = 0; round < 20; round++)
        {
            int first = -1;
            ParallelFor.ForShares(1000, 10, (start, end) =>
            {
                if (Environment.CurrentManagedThreadId == caller && first < 0) first = start;
            });
            Assert.True(first is 0 or -1, $"round {round}: the caller's first chunk started at {first}, not 0");
        }
    }

    [Fact]
    public void ForShares_RethrowsWorkerException()
    {
        var e = Assert.Throws<InvalidOperationException>(() => ParallelFor.ForShares(100, 1, (s, end) =>
        {
            if (s <= 57 && 57 < end) throw new InvalidOperationException("chunk 57");
        }));
        Assert.Equal("chunk 57", e.Message);

        // The pool still works afterwards.
        var hits = new int[100];
        ParallelFor.ForShares(100, 1, (start, end) =>
        {
            for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void ForShares_NestedInFor_RunsInlineAndVisitsEveryIndex()
    {
        var hits = new int[64 * 32];
        ParallelFor.For(64, 1, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                int row = i;
                ParallelFor.ForShares(32, 4, (s, e) =>
                {
                    for (int j = s; j < e; j++) Interlocked.Increment(ref hits[(row * 32) + j]);
                });
            }
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void ForShares_ConcurrentCallersFromManyThreads_EachVisitsEveryIndex()
    {
        const int Callers = 6, Count = 5000;
        var hits = new int[Callers, Count];
        Parallel.For(0, Callers, new ParallelOptions { MaxDegreeOfParallelism = Callers }, caller =>
        {
            for (int round = 0; round < 20; round++)
            {
                Action<int, int> body = (start, end) =>
                {
                    for (int i = start; i < end; i++) Interlocked.Increment(ref hits[caller, i]);
                };
                if (round % 2 == 0)
                {
                    ParallelFor.ForShares(Count, 64, body);
                }
                else
                {
                    ParallelFor.For(Count, 64, body);
                }
            }
        });
        foreach (int h in hits) Assert.Equal(20, h);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void ForShares_AnyDegree_VisitsEveryIndexExactlyOnce(int degree)
    {
        int saved = ParallelFor.MaxDegreeOfParallelism;
        try
        {
            ParallelFor.MaxDegreeOfParallelism = degree;
            var hits = new int[777];
            for (int round = 0; round < 10; round++)
            {
                ParallelFor.ForShares(777, 5, (start, end) =>
                {
                    for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
                });
            }

            Assert.All(hits, h => Assert.Equal(10, h));
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    [Fact]
    public void ForShares_MaxDegreeOne_RunsWholeRangeOnCallerThread()
    {
        int saved = ParallelFor.MaxDegreeOfParallelism;
        try
        {
            ParallelFor.MaxDegreeOfParallelism = 1;
            int caller = Environment.CurrentManagedThreadId, calls = 0;
            ParallelFor.ForShares(1000, 10, (start, end) =>
            {
                Assert.Equal(caller, Environment.CurrentManagedThreadId);
                Assert.Equal((0, 1000), (start, end));
                calls++;
            });
            Assert.Equal(1, calls);
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = saved;
        }
    }

    [Fact]
    public void MaxDegreeOfParallelism_BelowOne_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ParallelFor.MaxDegreeOfParallelism = 0);
    }
}
