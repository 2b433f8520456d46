using Sharpformer.Training.Checkpoints;

namespace Sharpformer.Training.Tests.Checkpoints;

public sealed class CheckpointStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-ckpt-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Save_KeepsLastK_OldestDeleted_ManifestVerifies()
    {
        var store = new CheckpointStore(_dir, keepLast: 2);
        for (long step = 10; step <= 40; step += 10)
        {
            store.Save(step, folder => File.WriteAllText(Path.Combine(folder, "model.bin"), $"weights at {step}"));
        }

        var all = store.List();
        Assert.Equal([30L, 40L], all.Select(c => c.Step));
        Assert.Equal(40, CheckpointStore.Verify(all[^1].Folder));
        Assert.Equal("weights at 40", File.ReadAllText(Path.Combine(store.Latest()!.Value.Folder, "model.bin")));
        Assert.False(Directory.Exists(store.PathOf(10)));
    }

    [Fact]
    public void Save_WriterThrows_PreviousCheckpointUntouched_NoTemporaryLeft()
    {
        var store = new CheckpointStore(_dir, keepLast: 1);
        store.Save(5, folder => File.WriteAllText(Path.Combine(folder, "a.txt"), "five"));
        Assert.Throws<IOException>(() => store.Save(6, folder =>
        {
            File.WriteAllText(Path.Combine(folder, "a.txt"), "six");
            throw new IOException("disk full");
        }));

        Assert.Equal(5, store.Latest()!.Value.Step);
        Assert.Equal(5, CheckpointStore.Verify(store.PathOf(5)));
        Assert.Empty(Directory.GetDirectories(_dir, ".tmp*"));
    }

    [Fact]
    public void List_IgnoresInterruptedSaves_AndNextSaveSweepsThem()
    {
        var store = new CheckpointStore(_dir, keepLast: 3);
        store.Save(1, folder => File.WriteAllText(Path.Combine(folder, "a.txt"), "one"));

        // What a kill in the middle of a save leaves: a temporary folder, and a checkpoint-N folder without a manifest
        // cannot exist (the rename comes after the manifest), but a foreign one without it must not count either.
        Directory.CreateDirectory(Path.Combine(_dir, ".tmp-checkpoint-2-deadbeef"));
        File.WriteAllText(Path.Combine(_dir, ".tmp-checkpoint-2-deadbeef", "a.txt"), "half");
        Directory.CreateDirectory(Path.Combine(_dir, "checkpoint-3"));
        Assert.Equal(1, store.Latest()!.Value.Step);

        store.Save(2, folder => File.WriteAllText(Path.Combine(folder, "a.txt"), "two"));
        Assert.Empty(Directory.GetDirectories(_dir, ".tmp*"));
        Assert.Equal([1L, 2L], store.List().Select(c => c.Step));
    }

    [Fact]
    public void Save_SameStepAgain_ReplacesIt()
    {
        var store = new CheckpointStore(_dir, keepLast: 3);
        store.Save(7, folder => File.WriteAllText(Path.Combine(folder, "a.txt"), "first"));
        store.Save(7, folder => File.WriteAllText(Path.Combine(folder, "a.txt"), "second"));
        Assert.Single(store.List());
        Assert.Equal("second", File.ReadAllText(Path.Combine(store.PathOf(7), "a.txt")));
        Assert.Equal(7, CheckpointStore.Verify(store.PathOf(7)));
    }

    [Fact]
    public void Verify_TruncatedAlteredOrMissingFile_NamesIt()
    {
        var store = new CheckpointStore(_dir, keepLast: 3);
        string folder = store.Save(3, f =>
        {
            File.WriteAllText(Path.Combine(f, "model.safetensors"), "0123456789");
            File.WriteAllText(Path.Combine(f, "optimizer.safetensors"), "abcdefghij");
        });

        File.WriteAllText(Path.Combine(folder, "model.safetensors"), "01234");
        var ex = Assert.Throws<InvalidDataException>(() => CheckpointStore.Verify(folder));
        Assert.Contains("model.safetensors", ex.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(folder, "model.safetensors"), "0123456780");
        ex = Assert.Throws<InvalidDataException>(() => CheckpointStore.Verify(folder));
        Assert.Contains("SHA-256", ex.Message, StringComparison.Ordinal);

        File.Delete(Path.Combine(folder, "optimizer.safetensors"));
        File.WriteAllText(Path.Combine(folder, "model.safetensors"), "0123456789");
        ex = Assert.Throws<InvalidDataException>(() => CheckpointStore.Verify(folder));
        Assert.Contains("optimizer.safetensors is missing", ex.Message, StringComparison.Ordinal);

        File.WriteAllText(Path.Combine(folder, CheckpointStore.ManifestFile), "{ not json");
        ex = Assert.Throws<InvalidDataException>(() => CheckpointStore.Verify(folder));
        Assert.Contains("not valid JSON", ex.Message, StringComparison.Ordinal);

        ex = Assert.Throws<InvalidDataException>(() => CheckpointStore.Verify(_dir));
        Assert.Contains("checkpoint.json is missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WriteAtomically_ReplacesWholeFile_NoTemporaryLeft()
    {
        Directory.CreateDirectory(_dir);
        string path = Path.Combine(_dir, "state.json");
        File.WriteAllText(path, "old content that is longer");
        CheckpointStore.WriteAtomically(path, s => s.Write("new"u8));
        Assert.Equal("new", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_dir));
    }
}
