using System.Text;

namespace Sharpformer.IO.Tests.Hub;

/// <summary>The fake repos the Hub tests download: fixed 40-hex commits, git files and LFS files.</summary>
public static class FakeRepos
{
    public const string CommitV1 = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
    public const string CommitMain = "fedcba9876543210fedcba9876543210fedcba98";
    public const string CommitGated = "1234567890abcdef1234567890abcdef12345678";
    public const string CommitSharded = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";

    public static FakeFile Git(string text) => new(Encoding.UTF8.GetBytes(text), Lfs: false);

    /// <summary>Deterministic pseudo-random bytes, stored in LFS.</summary>
    public static FakeFile Lfs(int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return new FakeFile(bytes, Lfs: true);
    }

    /// <summary>org/tiny: main → CommitMain (config, LFS weights, tokenizer, a nested file); v1.0 and refs/pr/1 → CommitV1.</summary>
    public static FakeRepo Tiny()
    {
        var repo = new FakeRepo("org/tiny");
        repo.Commits[CommitV1] = new(StringComparer.Ordinal)
        {
            ["config.json"] = Git("{\"model_type\": \"gpt2\", \"n_layer\": 1}"),
        };
        repo.Commits[CommitMain] = new(StringComparer.Ordinal)
        {
            ["config.json"] = Git("{\"model_type\": \"gpt2\", \"n_layer\": 2}"),
            ["model.safetensors"] = Lfs(300_000, seed: 1),
            ["tokenizer.json"] = Git("{\"version\": \"1.0\"}"),
            ["sub/dir/nested.txt"] = Git("nested"),
        };
        repo.Refs["main"] = CommitMain;
        repo.Refs["v1.0"] = CommitV1;
        repo.Refs["refs/pr/1"] = CommitV1;
        return repo;
    }

    /// <summary>org/gated: needs <see cref="FakeHubServer.Token"/>.</summary>
    public static FakeRepo Gated()
    {
        var repo = new FakeRepo("org/gated") { Gated = true };
        repo.Commits[CommitGated] = new(StringComparer.Ordinal)
        {
            ["config.json"] = Git("{\"model_type\": \"llama\"}"),
            ["model.safetensors"] = Lfs(50_000, seed: 2),
        };
        repo.Refs["main"] = CommitGated;
        return repo;
    }

    /// <summary>org/sharded: index + two LFS shards, vocab.txt, no single model.safetensors.</summary>
    public static FakeRepo Sharded()
    {
        var repo = new FakeRepo("org/sharded");
        repo.Commits[CommitSharded] = new(StringComparer.Ordinal)
        {
            ["config.json"] = Git("{\"model_type\": \"bert\"}"),
            ["model.safetensors.index.json"] = Git(
                "{\"metadata\": {\"total_size\": 3}, \"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\", "
                + "\"b.weight\": \"model-00002-of-00002.safetensors\", \"c.weight\": \"model-00001-of-00002.safetensors\"}}"),
            ["model-00001-of-00002.safetensors"] = Lfs(70_000, seed: 3),
            ["model-00002-of-00002.safetensors"] = Lfs(80_000, seed: 4),
            ["vocab.txt"] = Git("[PAD]\n[UNK]\n"),
            ["pytorch_model.bin"] = Lfs(1_000, seed: 5),
        };
        repo.Refs["main"] = CommitSharded;
        return repo;
    }
}
