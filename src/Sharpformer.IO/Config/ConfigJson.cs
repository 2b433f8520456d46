using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sharpformer.IO.Config;

/// <summary>
/// The keys every Hugging Face config.json may carry (PretrainedConfig), spelled exactly as in the file. Keys this
/// type does not name are kept in <see cref="Extra"/>, never dropped.
/// </summary>
public abstract class ConfigJson
{
    /// <summary><c>model_type</c>: selects the architecture; absent in some old checkpoints.</summary>
    [JsonPropertyName("model_type")] public string? ModelType { get; set; }

    /// <summary><c>architectures</c>: class names such as <c>BertForMaskedLM</c>.</summary>
    [JsonPropertyName("architectures")] public IList<string>? Architectures { get; set; }

    /// <summary><c>torch_dtype</c>: the dtype the weights were saved in (e.g. <c>float32</c>, <c>bfloat16</c>).</summary>
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; set; }

    /// <summary><c>dtype</c>: the newer spelling of <c>torch_dtype</c> (transformers 4.56+).</summary>
    [JsonPropertyName("dtype")] public string? Dtype { get; set; }

    /// <summary><c>transformers_version</c>: the version that wrote the file.</summary>
    [JsonPropertyName("transformers_version")] public string? TransformersVersion { get; set; }

    /// <summary><c>bos_token_id</c>.</summary>
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; set; }

    /// <summary><c>eos_token_id</c>: one id or a list of ids (Llama 3 instruct lists several).</summary>
    [JsonPropertyName("eos_token_id")]
    [JsonConverter(typeof(TokenIdListConverter))]
    public IList<int>? EosTokenId { get; set; }

    /// <summary><c>pad_token_id</c>.</summary>
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; set; }

    /// <summary><c>tie_word_embeddings</c>: whether the output projection shares the input embedding.</summary>
    [JsonPropertyName("tie_word_embeddings")] public bool? TieWordEmbeddings { get; set; }

    /// <summary><c>id2label</c>: class index (as a string key) to label, for classification heads.</summary>
    [JsonPropertyName("id2label")] public IDictionary<string, string>? Id2Label { get; set; }

    /// <summary><c>label2id</c>: label to class index, the inverse of <see cref="Id2Label"/>.</summary>
    [JsonPropertyName("label2id")] public IDictionary<string, int>? Label2Id { get; set; }

    /// <summary><c>num_labels</c>: the number of classes when <c>id2label</c> is absent (HF's default is 2).</summary>
    [JsonPropertyName("num_labels")] public int? NumLabels { get; set; }

    /// <summary><c>problem_type</c>: <c>single_label_classification</c>, <c>multi_label_classification</c> or <c>regression</c>.</summary>
    [JsonPropertyName("problem_type")] public string? ProblemType { get; set; }

    /// <summary><c>auto_map</c>: remote-code class paths. Never executed; its presence only adds a warning.</summary>
    [JsonPropertyName("auto_map")] public JsonElement? AutoMap { get; set; }

    /// <summary>Every key this type does not name, kept verbatim.</summary>
    [JsonExtensionData] public IDictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>Reads <c>eos_token_id</c>-style values: a number, a list of numbers, or null.</summary>
internal sealed class TokenIdListConverter : JsonConverter<IList<int>>
{
    public override IList<int>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number)
            return [reader.GetInt32()];
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new JsonException("expected a token id or a list of token ids");
        var ids = new List<int>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number)
                throw new JsonException("expected a list of integer token ids");
            ids.Add(reader.GetInt32());
        }
        return ids;
    }

    public override void Write(Utf8JsonWriter writer, IList<int> value, JsonSerializerOptions options)
    {
        if (value.Count == 1)
        {
            writer.WriteNumberValue(value[0]);
            return;
        }
        writer.WriteStartArray();
        foreach (var id in value)
            writer.WriteNumberValue(id);
        writer.WriteEndArray();
    }
}
