// The CLI tests redirect Console.Out/Error, which is process-wide: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
