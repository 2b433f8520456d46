using Sharpformer.IO.Config;

namespace Sharpformer.IO.Tests.Config;

public sealed class ModelConfigTests
{
    [Fact]
    public void Load_BertBaseUncased_ReadsEveryKey()
    {
        var c = Assert.IsType<BertConfig>(ModelConfig.Load(RealConfigs.BertBaseUncased));

        Assert.Equal("bert", c.ModelType);
        Assert.Equal((30522, 768, 12, 12, 3072, 512), (c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize, c.MaxPositionEmbeddings));
        Assert.Equal(("gelu", 2, 1e-12, "absolute", 0), (c.HiddenAct, c.TypeVocabSize, c.LayerNormEps, c.PositionEmbeddingType, c.PadTokenId));
        Assert.Equal(["BertForMaskedLM"], c.Architectures);
        Assert.Equal(0.1, c.ClassifierDropout); // null → hidden_dropout_prob
        Assert.True(c.TieWordEmbeddings);
        Assert.False(c.ExtraKeys["gradient_checkpointing"].GetBoolean()); // unknown keys are kept
    }

    [Fact]
    public void Load_DistilBertBaseUncased_MapsDimHeadsLayers()
    {
        var c = Assert.IsType<DistilBertConfig>(ModelConfig.Load(RealConfigs.DistilBertBaseUncased));

        Assert.Equal((768, 12, 6, 3072, 512), (c.HiddenSize, c.NumAttentionHeads, c.NumHiddenLayers, c.IntermediateSize, c.MaxPositionEmbeddings));
        Assert.Equal(("gelu", false, 0.2, 0.1), (c.Activation, c.SinusoidalPosEmbds, c.SeqClassifDropout, c.QaDropout));
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(0, c.PadTokenId);
        Assert.Empty(c.ExtraKeys);
    }

    [Fact]
    public void Load_RobertaBase_KeepsRobertaSpecials()
    {
        var c = Assert.IsType<RobertaConfig>(ModelConfig.Load(RealConfigs.RobertaBase));

        Assert.Equal("roberta", c.ModelType);
        Assert.Equal((50265, 514, 1, 1e-5), (c.VocabSize, c.MaxPositionEmbeddings, c.TypeVocabSize, c.LayerNormEps));
        Assert.Equal((1, 0), (c.PadTokenId, c.BosTokenId));
        Assert.Equal([2], c.EosTokenIds);
    }

    [Fact]
    public void Load_Gpt2_ResolvesNInnerAndAliases()
    {
        var c = Assert.IsType<Gpt2Config>(ModelConfig.Load(RealConfigs.Gpt2));

        Assert.Equal((768, 12, 12, 1024, 50257), (c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.MaxPositionEmbeddings, c.VocabSize));
        Assert.Equal(4 * 768, c.IntermediateSize); // n_inner absent → 4·n_embd
        Assert.Equal(("gelu_new", 1e-5), (c.ActivationFunction, c.LayerNormEpsilon));
        Assert.Equal(50256, c.BosTokenId);
        Assert.Equal([50256], c.EosTokenIds);
        Assert.Null(c.PadTokenId);
        Assert.True(c.TieWordEmbeddings);
        Assert.True(c.ScaleAttnWeights);
        Assert.Equal("cls_index", c.ExtraKeys["summary_type"].GetString());
        Assert.True(c.ExtraKeys.ContainsKey("task_specific_params"));
    }

    [Fact]
    public void Load_Llama32_1B_ReadsGqaHeadDimAndLlama3Rope()
    {
        var c = Assert.IsType<LlamaConfig>(ModelConfig.Load(RealConfigs.Llama32_1B));

        Assert.Equal((2048, 16, 32, 8, 64, 8192), (c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.IntermediateSize));
        Assert.Equal((500000.0, 1e-5, 131072, 128256), (c.RopeTheta, c.RmsNormEps, c.MaxPositionEmbeddings, c.VocabSize));
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal("bfloat16", c.TorchDtype);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        var rope = Assert.IsType<RopeScaling>(c.RopeScaling);
        Assert.Equal(("llama3", 32.0, 1.0, 4.0, 8192), (rope.RopeType, rope.Factor, rope.LowFreqFactor, rope.HighFreqFactor, rope.OriginalMaxPositionEmbeddings));
    }

    [Fact]
    public void Load_TinyLlama_NullRopeScalingAndUntiedEmbeddings()
    {
        var c = Assert.IsType<LlamaConfig>(ModelConfig.Load(RealConfigs.TinyLlama));

        Assert.Equal((22, 4, 64, 5632), (c.NumHiddenLayers, c.NumKeyValueHeads, c.HeadDim, c.IntermediateSize));
        Assert.Null(c.RopeScaling);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal((1, 1e-5), (c.BosTokenId, c.RmsNormEps));
        Assert.Equal([2], c.EosTokenIds);
    }

    [Fact]
    public void Load_MinimalLlama_AppliesLlamaConfigDefaults()
    {
        var c = Assert.IsType<LlamaConfig>(ModelConfig.Load("""{"model_type": "llama"}"""));

        Assert.Equal((32000, 4096, 11008, 32, 32, 32, 128), (c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal(("silu", 2048, 1e-6, 10000.0, false), (c.HiddenAct, c.MaxPositionEmbeddings, c.RmsNormEps, c.RopeTheta, c.TieWordEmbeddings));
        Assert.Equal((1, (int?)null), (c.BosTokenId, c.PadTokenId));
        Assert.Equal([2], c.EosTokenIds);
    }

    [Fact]
    public void Load_MinimalRoberta_AppliesRobertaDefaultsNotBerts()
    {
        var roberta = Assert.IsType<RobertaConfig>(ModelConfig.Load("""{"model_type": "roberta"}"""));
        var bert = Assert.IsType<BertConfig>(ModelConfig.Load("""{"model_type": "bert"}"""));

        Assert.Equal((1, 0, 50265), (roberta.PadTokenId, roberta.BosTokenId, roberta.VocabSize));
        Assert.Equal([2], roberta.EosTokenIds);
        Assert.Equal((0, (int?)null, 30522), (bert.PadTokenId, bert.BosTokenId, bert.VocabSize));
        Assert.Empty(bert.EosTokenIds);
        Assert.Equal(1e-12, roberta.LayerNormEps);
    }

    [Fact]
    public void Load_MinimalGpt2WithNarrowWidth_NInnerIsFourTimesNEmbd()
    {
        var c = Assert.IsType<Gpt2Config>(ModelConfig.Load("""{"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_inner": null}"""));

        Assert.Equal(256, c.IntermediateSize);
    }

    [Theory]
    [InlineData("BertForMaskedLM", typeof(BertConfig))]
    [InlineData("DistilBertForSequenceClassification", typeof(DistilBertConfig))]
    [InlineData("RobertaForMaskedLM", typeof(RobertaConfig))]
    [InlineData("GPT2LMHeadModel", typeof(Gpt2Config))]
    [InlineData("LlamaForCausalLM", typeof(LlamaConfig))]
    public void Load_NoModelTypeOldCheckpoint_DispatchesOnArchitectures(string architecture, Type expected)
    {
        var c = ModelConfig.Load($$"""{"architectures": ["{{architecture}}"]}""");

        Assert.IsType(expected, c);
    }

    [Fact]
    public void Load_UnknownModelType_ListsSupportedTypes()
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Load("""{"model_type": "whisper"}"""));

        Assert.Contains("'whisper'", e.Message, StringComparison.Ordinal);
        Assert.All(ModelConfig.SupportedModelTypes, type => Assert.Contains(type, e.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void Load_LlamaKin_ResolveTheirOwnDefaults()
    {
        var mistral = Assert.IsType<LlamaConfig>(ModelConfig.Load("""{"model_type": "mistral", "sliding_window": 4096}"""));
        Assert.Equal("mistral", mistral.ModelType);
        Assert.Equal(8, mistral.NumKeyValueHeads);
        Assert.Equal(14336, mistral.IntermediateSize);
        Assert.Equal(4096, mistral.WindowOf(0));
        Assert.False(mistral.QkvBias);

        var qwen = Assert.IsType<LlamaConfig>(ModelConfig.Load("""{"model_type": "qwen2", "use_sliding_window": true, "sliding_window": 128, "max_window_layers": 2}"""));
        Assert.True(qwen.QkvBias);
        Assert.False(qwen.OutputBias);
        Assert.Null(qwen.WindowOf(1));
        Assert.Equal(128, qwen.WindowOf(2));
        Assert.Null(Assert.IsType<LlamaConfig>(ModelConfig.Load("""{"model_type": "qwen2", "sliding_window": 128}""")).WindowOf(40));

        var phi = Assert.IsType<LlamaConfig>(ModelConfig.Load("""{"model_type": "phi3", "rope_scaling": {"type": "su", "short_factor": [1], "long_factor": [2]}}"""));
        Assert.True(phi.FusedProjections);
        Assert.Equal(32064, phi.VocabSize);
        Assert.Equal(1e-5, phi.RmsNormEps);
        Assert.Equal("longrope", phi.RopeScaling!.RopeType);
        Assert.Equal([2.0], phi.RopeScaling.GetList("long_factor")!);

        Assert.IsType<LlamaConfig>(ModelConfig.Load("""{"architectures": ["Qwen2ForCausalLM"]}"""));
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Load("""{"model_type": "phi3", "partial_rotary_factor": 0.75}"""));
        Assert.Contains("partial_rotary_factor", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NoModelTypeNoKnownArchitecture_SaysAddModelType()
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Load("""{"architectures": ["WhisperForConditionalGeneration"]}"""));

        Assert.Contains("model_type", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model_type": "bert", """, "not valid JSON")]
    [InlineData("""{"model_type": "bert", "hidden_size": "768"}""", "hidden_size")]
    [InlineData("""{"model_type": "bert", "hidden_size": 770}""", "divisible")]
    [InlineData("""{"model_type": "bert", "num_hidden_layers": 0}""", "'num_hidden_layers' must be positive")]
    [InlineData("""{"model_type": "bert", "hidden_act": "gelu_foo"}""", "not a known activation")]
    [InlineData("""{"model_type": "bert", "position_embedding_type": "rotary"}""", "position_embedding_type")]
    [InlineData("""{"model_type": "bert", "layer_norm_eps": -1}""", "layer_norm_eps")]
    [InlineData("""{"model_type": "bert", "hidden_size": 768, "hidden_size": 1024}""", "hidden_size")]
    [InlineData("""{"model_type": "distilbert", "dropout": 1.5}""", "'dropout' must be in [0, 1]")]
    [InlineData("""{"model_type": "gpt2", "n_embd": 100, "n_head": 12}""", "'n_embd' (100) must be divisible by 'n_head' (12)")]
    [InlineData("""{"model_type": "gpt2", "activation_function": "gelu2"}""", "activation_function")]
    [InlineData("""{"model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 5}""", "num_key_value_heads")]
    [InlineData("""{"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}""", "low_freq_factor")]
    [InlineData("""{"model_type": "llama", "rope_scaling": {"rope_type": "spiral", "factor": 8.0}}""", "'spiral'")]
    [InlineData("""{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 0.5}}""", "factor")]
    [InlineData("""{"model_type": "llama", "eos_token_id": "x"}""", "eos_token_id")]
    [InlineData("""{"model_type": 3}""", "model_type")]
    [InlineData("""[1, 2]""", "must be a JSON object")]
    [InlineData("""{"model_type": "bert", "id2label": {"zero": "NEG"}}""", "id2label")]
    [InlineData("""{"model_type": "bert", "num_labels": 3, "id2label": {"0": "A", "1": "B"}}""", "'num_labels' is 3 but 'id2label' has 2")]
    [InlineData("""{"model_type": "bert", "id2label": {"0": "A", "2": "B"}}""", "no key \"1\"")]
    [InlineData("""{"model_type": "bert", "id2label": {"0": "A", "1": "B"}, "label2id": {"A": 1, "B": 0}}""", "'label2id' maps 'A' to 1")]
    [InlineData("""{"model_type": "bert", "id2label": {"0": "A", "1": "A"}}""", "names a label twice")]
    [InlineData("""{"model_type": "bert", "num_labels": 0}""", "num_labels")]
    [InlineData("""{"model_type": "distilbert", "problem_type": "ranking"}""", "'problem_type' is 'ranking'")]
    public void Load_MalformedConfig_ErrorNamesTheProblem(string json, string expected)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json, "test.json"));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("test.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_LegacyRopeTypeKey_IsAcceptedAsRopeType()
    {
        var c = Assert.IsType<LlamaConfig>(ModelConfig.Load("""{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}}"""));

        Assert.Equal(("linear", 2.0), (c.RopeScaling!.RopeType, c.RopeScaling.Factor));
    }

    [Fact]
    public void Load_NoLabels_DefaultsAsPretrainedConfig()
    {
        var two = ModelConfig.Parse("""{"model_type": "bert"}""");
        var four = ModelConfig.Parse("""{"model_type": "gpt2", "num_labels": 4}""");

        Assert.Equal(2, two.NumLabels);
        Assert.Equal(["LABEL_0", "LABEL_1"], two.Id2Label.OrderBy(p => p.Key).Select(p => p.Value));
        Assert.Equal(1, two.Label2Id["LABEL_1"]);
        Assert.Null(two.ProblemType);
        Assert.Equal(4, four.NumLabels);
        Assert.Equal("LABEL_3", four.Id2Label[3]);
    }

    [Fact]
    public void Load_ConsistentLabels_ParsesLabelsAndProblemType()
    {
        var c = ModelConfig.Parse("""{"model_type": "bert", "num_labels": 2, "id2label": {"0": "NEG", "1": "POS"}, "label2id": {"NEG": 0, "POS": 1}, "problem_type": "multi_label_classification"}""");

        Assert.Equal(2, c.NumLabels);
        Assert.Equal(0, c.Label2Id["NEG"]);
        Assert.Equal("multi_label_classification", c.ProblemType);
        Assert.Contains("\"problem_type\"", c.SourceJson, StringComparison.Ordinal);
    }

    [Fact]
    public void WithLabels_SetsBothMapsAndRejectsDuplicates()
    {
        var c = ModelConfig.Parse("""{"model_type": "bert"}""").WithLabels(["x", "y", "z"]);

        Assert.Equal(3, c.NumLabels);
        Assert.Equal("z", c.Id2Label[2]);
        Assert.Equal(1, c.Label2Id["y"]);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => c.WithLabels(["a", "a"])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => c.WithProblemType("ranking"));
    }

    [Fact]
    public void Load_AutoMapAndLabels_WarnsAndParsesLabels()
    {
        var c = ModelConfig.Load("""{"model_type": "bert", "auto_map": {"AutoModel": "x.Y"}, "trust_remote_code": true, "id2label": {"0": "NEG", "1": "POS"}}""");

        Assert.Contains(c.Warnings, w => w.Contains("auto_map", StringComparison.Ordinal));
        Assert.Contains(c.Warnings, w => w.Contains("trust_remote_code", StringComparison.Ordinal));
        Assert.Equal("POS", c.Id2Label[1]);
    }

    [Fact]
    public void Load_FolderOrFilePath_ReadsConfigJsonAndNamesPathInErrors()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sharpformer-config-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var file = Path.Combine(dir, "config.json");
            File.WriteAllText(file, RealConfigs.Gpt2);
            Assert.IsType<Gpt2Config>(ModelConfig.Load(dir));
            Assert.IsType<Gpt2Config>(ModelConfig.Load(file));

            File.WriteAllText(file, """{"model_type": "gpt2", "n_layer": -2}""");
            var bad = Assert.Throws<ModelConfigException>(() => ModelConfig.Load(dir));
            Assert.Contains(file, bad.Message, StringComparison.Ordinal);

            var missing = Assert.Throws<ModelConfigException>(() => ModelConfig.Load(Path.Combine(dir, "nope")));
            Assert.Contains("not found", missing.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
