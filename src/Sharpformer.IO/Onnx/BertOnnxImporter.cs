using System.Diagnostics.CodeAnalysis;
using Sharpformer.Tensors;

namespace Sharpformer.IO.Onnx;

/// <summary>The BERT hyper-parameters recovered from an ONNX graph (the values of a Hugging Face BertConfig).</summary>
/// <param name="VocabSize">Rows of the word-embedding table (V).</param>
/// <param name="HiddenSize">Model width (C).</param>
/// <param name="NumHiddenLayers">Encoder layers found by walking the graph.</param>
/// <param name="NumAttentionHeads">Heads (H), from the Reshape that splits Q into [B, T, H, D].</param>
/// <param name="IntermediateSize">Width of the feed-forward hidden layer.</param>
/// <param name="MaxPositionEmbeddings">Rows of the position-embedding table.</param>
/// <param name="TypeVocabSize">Rows of the token-type embedding table.</param>
/// <param name="LayerNormEps">Epsilon of the LayerNorms (the graph constant).</param>
/// <param name="HiddenAct">Feed-forward activation: "gelu" (erf form), "gelu_new" (tanh form) or "relu".</param>
/// <param name="HasPooler">True when the graph computes the pooler (tanh(dense(h[:, 0]))).</param>
public sealed record BertOnnxConfig(
    int VocabSize,
    int HiddenSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int IntermediateSize,
    int MaxPositionEmbeddings,
    int TypeVocabSize,
    double LayerNormEps,
    string HiddenAct,
    bool HasPooler);

/// <summary>The result of importing a BERT ONNX export: its config and its weights under Hugging Face BertModel names.</summary>
/// <param name="Config">Hyper-parameters recovered from the graph.</param>
/// <param name="Tensors">(name, tensor) pairs in BertModel's state-dict order; linear weights are [out, in] F32.</param>
public sealed record BertOnnxImport(BertOnnxConfig Config, IReadOnlyList<KeyValuePair<string, Tensor>> Tensors);

/// <summary>
/// Recovers a Hugging Face BertModel from an ONNX export (e.g. sentence-transformers' all-MiniLM-L6-v2) by following the
/// graph's data flow, never initializer order or names: the word/position/token-type Gathers, the embedding LayerNorm
/// (LayerNormalization or the decomposed ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add form), then per layer the three MatMuls
/// that read the layer input (Q and K meet in the score MatMul, K through a Transpose; V meets the probabilities), the
/// attention output dense, residual and LayerNorm, the intermediate dense and activation, the output dense, residual and
/// LayerNorm, and finally the pooler when present. MatMul weights are stored [in, out] and are transposed to [out, in].
/// </summary>
public static class BertOnnxImporter
{
    private const string NotBert = "is not a BERT export this importer understands";

    /// <summary>Imports <paramref name="model"/>; see <see cref="BertOnnxImporter"/> for the patterns matched.</summary>
    /// <exception cref="OnnxFormatException">The graph does not have the BERT structure (the message says which step failed).</exception>
    public static BertOnnxImport Import(OnnxModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new Walker(model).Run();
    }

    /// <summary>MatMul/Gemm + bias: <c>y = x · W + b</c> with W as stored (<see cref="WeightIsOutIn"/> says its layout).</summary>
    private sealed record Linear(OnnxNode Node, OnnxTensor Weight, OnnxTensor Bias, string Output, bool WeightIsOutIn)
    {
        public int In => (int)(WeightIsOutIn ? Weight.Dims[1] : Weight.Dims[0]);

        public int Out => (int)(WeightIsOutIn ? Weight.Dims[0] : Weight.Dims[1]);
    }

    private sealed record LayerNormMatch(OnnxTensor Gamma, OnnxTensor Beta, float Eps, string Output);

    private sealed class Walker(OnnxModel model)
    {
        private readonly OnnxGraphIndex _g = new(model.Graph);
        private readonly List<KeyValuePair<string, Tensor>> _tensors = [];
        private readonly Dictionary<(OnnxTensor, bool), Tensor> _converted = [];

        public BertOnnxImport Run()
        {
            // ---- embeddings: Gathers on 2-D float tables.
            var gathers = model.Graph.Nodes
                .Where(n => n.OpType == "Gather" && n.Inputs.Count == 2 && _g.FloatConstant(n.In(0), 2) is not null)
                .ToList();
            var inputs = model.Graph.Inputs.ToHashSet(StringComparer.Ordinal);
            var onInputs = gathers.Where(n => inputs.Contains(n.In(1))).OrderByDescending(n => _g.Constant(n.In(0))!.Dims[0]).ToList();
            if (onInputs.Count == 0)
            {
                Fail("graph", "no Gather reads an embedding table with a graph input as indices (expected input_ids → word embeddings)");
            }

            // Word: indexed by input_ids (else the largest table on a graph input). Token type: indexed by token_type_ids
            // (else the smallest table on another graph input). Position: indexed by a computed value (a Slice of the
            // position_ids buffer) or by a position_ids graph input.
            var word = onInputs.FirstOrDefault(n => n.In(1) == "input_ids") ?? onInputs[0];
            var rest = gathers.Where(n => n != word).ToList();
            var tokenType = rest.FirstOrDefault(n => n.In(1) == "token_type_ids")
                ?? rest.Where(n => inputs.Contains(n.In(1)) && n.In(1) != "position_ids").OrderBy(n => _g.Constant(n.In(0))!.Dims[0]).FirstOrDefault();
            var position = rest.FirstOrDefault(n => n != tokenType && (n.In(1) == "position_ids" || !inputs.Contains(n.In(1))));
            if (tokenType is null || position is null)
            {
                Fail("embeddings", $"found the word-embedding Gather but no {(tokenType is null ? "token-type" : "position")} embedding Gather");
            }

            var wordTable = _g.Constant(word.In(0))!;
            var posTable = _g.Constant(position.In(0))!;
            var typeTable = _g.Constant(tokenType.In(0))!;
            int hidden = (int)wordTable.Dims[1];
            if (posTable.Dims[1] != hidden || typeTable.Dims[1] != hidden)
            {
                Fail("embeddings", $"tables have widths {wordTable.Dims[1]}, {posTable.Dims[1]}, {typeTable.Dims[1]}; all must equal the hidden size");
            }

            // Sum of the three lookups, then the embedding LayerNorm.
            string v = word.Out;
            var summed = new HashSet<string>(StringComparer.Ordinal) { word.Out };
            LayerNormMatch? embLn = null;
            for (int step = 0; step < 4 && embLn is null; step++)
            {
                embLn = TryLayerNorm(v);
                if (embLn is not null) break;
                var add = _g.OnlyConsumer(v, "Add");
                if (add is null) break;
                summed.Add(OnnxGraphIndex.OtherInput(add, v) ?? string.Empty);
                v = add.Out;
            }

            if (embLn is null)
            {
                Fail("embeddings", "the word + position + token-type sum does not feed a LayerNorm (LayerNormalization or ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add)");
            }

            if (!summed.Contains(position.Out) || !summed.Contains(tokenType.Out))
            {
                Fail("embeddings", "the LayerNorm input is not the sum of the word, position and token-type lookups");
            }

            Add("embeddings.word_embeddings.weight", Convert(wordTable, false));
            Add("embeddings.position_embeddings.weight", Convert(posTable, false));
            Add("embeddings.token_type_embeddings.weight", Convert(typeTable, false));
            AddLayerNorm("embeddings.LayerNorm", embLn);

            // ---- encoder layers.
            string h = embLn.Output;
            int layers = 0, heads = 0, intermediate = 0;
            string? act = null;
            float eps = embLn.Eps;
            var layerInputs = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                var qkv = Linears(h).Where(l => l.In == hidden && l.Out == hidden).ToList();
                if (qkv.Count == 0) break;
                string layer = $"encoder.layer.{layers}";
                if (!layerInputs.Add(h))
                {
                    // A valid ONNX graph is acyclic; a hostile one could loop a layer's output back to an earlier input.
                    Fail(layer, $"the layer input '{h}' was already the input of an earlier layer: the graph has a cycle");
                }

                if (qkv.Count != 3)
                {
                    Fail(layer, $"{qkv.Count} hidden×hidden projections read the layer input '{h}'; self-attention needs exactly three (Q, K, V)");
                }

                var (q, k, vProj, layerHeads, context) = MatchAttention(layer, qkv, hidden);
                var attnDense = TraceToLinear(context, hidden, hidden) ?? Fail<Linear>(layer, $"the attention context '{context}' does not reach the output dense (a hidden×hidden MatMul)");
                var attnLn = ResidualLayerNorm(layer + ".attention.output", attnDense.Output, h);
                var inter = Linears(attnLn.Output).SingleOrDefault(l => l.In == hidden)
                    ?? Fail<Linear>(layer, $"no single intermediate dense reads the attention LayerNorm output '{attnLn.Output}'");
                var (outDense, layerAct) = MatchActivation(layer, inter, hidden);
                var outLn = ResidualLayerNorm(layer + ".output", outDense.Output, attnLn.Output);

                if (layers == 0)
                {
                    heads = layerHeads;
                    intermediate = inter.Out;
                    act = layerAct;
                }
                else if (heads != layerHeads || intermediate != inter.Out || act != layerAct)
                {
                    Fail(layer, $"differs from layer 0 (heads {layerHeads} vs {heads}, intermediate {inter.Out} vs {intermediate}, activation {layerAct} vs {act}); BertConfig needs identical layers");
                }

                foreach (var ln in new[] { attnLn, outLn })
                {
                    if (ln.Eps != eps) Fail(layer, $"LayerNorm epsilon {ln.Eps} differs from the embedding LayerNorm's {eps}");
                }

                AddLinear($"{layer}.attention.self.query", q);
                AddLinear($"{layer}.attention.self.key", k);
                AddLinear($"{layer}.attention.self.value", vProj);
                AddLinear($"{layer}.attention.output.dense", attnDense);
                AddLayerNorm($"{layer}.attention.output.LayerNorm", attnLn);
                AddLinear($"{layer}.intermediate.dense", inter);
                AddLinear($"{layer}.output.dense", outDense);
                AddLayerNorm($"{layer}.output.LayerNorm", outLn);
                h = outLn.Output;
                layers++;
            }

            if (layers == 0)
            {
                Fail("encoder", $"the embedding LayerNorm output '{embLn.Output}' feeds no Q/K/V projections");
            }

            // ---- pooler: tanh(dense(h[:, 0])).
            var pooler = MatchPooler(h, hidden);
            if (pooler is not null) AddLinear("pooler.dense", pooler);

            var config = new BertOnnxConfig(
                VocabSize: (int)wordTable.Dims[0],
                HiddenSize: hidden,
                NumHiddenLayers: layers,
                NumAttentionHeads: heads,
                IntermediateSize: intermediate,
                MaxPositionEmbeddings: (int)posTable.Dims[0],
                TypeVocabSize: (int)typeTable.Dims[0],
                LayerNormEps: double.Parse(eps.ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture),
                HiddenAct: act!,
                HasPooler: pooler is not null);
            return new BertOnnxImport(config, _tensors);
        }

        private (Linear Q, Linear K, Linear V, int Heads, string Context) MatchAttention(string layer, List<Linear> qkv, int hidden)
        {
            var reached = qkv.Select(l => (Linear: l, Hit: TraceToMatMul(l.Output))).ToList();
            foreach (var (l, hit) in reached)
            {
                if (hit.Node is null)
                {
                    Fail(layer, $"the projection '{l.Output}' does not reach an attention MatMul through Reshape/Transpose");
                }
            }

            // Q is the left operand of the score MatMul, K its right operand (through a Transpose); V is the right
            // operand of a different MatMul whose left operand is the softmax of the scores.
            var qHit = reached.Where(x => x.Hit.Index == 0).ToList();
            if (qHit.Count != 1)
            {
                Fail(layer, $"{qHit.Count} projections are the left operand of an attention MatMul; expected only Q");
            }

            var score = qHit[0].Hit.Node!;
            var kHit = reached.Where(x => x.Hit.Node == score && x.Hit.Index == 1).ToList();
            var vHit = reached.Where(x => x.Hit.Node != score && x.Hit.Index == 1).ToList();
            if (kHit.Count != 1 || vHit.Count != 1)
            {
                Fail(layer, "could not tell K (right operand of the score MatMul) from V (right operand of the probabilities·V MatMul)");
            }

            if (!kHit[0].Hit.Transposed)
            {
                Fail(layer, "the K projection reaches the score MatMul without a Transpose of its last two axes");
            }

            var ctxMatMul = vHit[0].Hit.Node!;
            if (!FromSoftmaxOf(ctxMatMul.In(0), score.Out))
            {
                Fail(layer, $"the left operand of {ctxMatMul.Label} is not a Softmax of the scores from {score.Label}");
            }

            int heads = HeadsFromReshape(layer, qHit[0].Hit.Reshape, hidden);
            return (qHit[0].Linear, kHit[0].Linear, vHit[0].Linear, heads, ctxMatMul.Out);
        }

        private bool FromSoftmaxOf(string value, string scores)
        {
            // Walk back from the probabilities through Dropout/Cast/Identity to the Softmax, then from its input back
            // through the scaling and mask Add/Div/Mul to the score MatMul output.
            var node = _g.Producer(value);
            for (int i = 0; i < 4 && node is not null && node.OpType is "Dropout" or "Cast" or "Identity"; i++) node = _g.Producer(node.In(0));
            if (node?.OpType != "Softmax") return false;
            var frontier = new Queue<string>([node.In(0)]);
            for (int visited = 0; frontier.Count > 0 && visited < 16; visited++)
            {
                string v = frontier.Dequeue();
                if (v == scores) return true;
                var p = _g.Producer(v);
                if (p is not null && p.OpType is "Add" or "Div" or "Mul" or "Where" or "Cast" or "Sub")
                {
                    foreach (string input in p.Inputs) frontier.Enqueue(input);
                }
            }

            return false;
        }

        /// <summary>Follows a projection through Reshape/Transpose/scaling to the first MatMul of two computed operands.</summary>
        private (OnnxNode? Node, int Index, bool Transposed, OnnxNode? Reshape) TraceToMatMul(string value)
        {
            bool transposed = false;
            OnnxNode? reshape = null;
            for (int step = 0; step < 8; step++)
            {
                var next = _g.Consumers(value).Where(n => n.OpType != "Shape").ToList();
                if (next.Count != 1) return (null, -1, false, null);
                var node = next[0];
                switch (node.OpType)
                {
                    case "MatMul" when _g.Constant(node.In(0)) is null && _g.Constant(node.In(1)) is null:
                        return (node, node.In(0) == value ? 0 : 1, transposed, reshape);
                    case "Reshape":
                        reshape ??= node;
                        break;
                    case "Transpose":
                        // [B, T, H, D] → [B, H, D, T] (perm 0,2,3,1) or [B, H, T, D] → [B, H, D, T] (perm 0,1,3,2).
                        if (node.Attributes.TryGetValue("perm", out var perm) && perm.Ints.Count == 4 && (perm.Ints.SequenceEqual([0L, 2, 3, 1]) || perm.Ints.SequenceEqual([0L, 1, 3, 2])))
                        {
                            transposed = true;
                        }

                        break;
                    case "Div" or "Mul" when _g.ScalarFloat(OnnxGraphIndex.OtherInput(node, value) ?? string.Empty) is not null:
                    case "Identity" or "Cast":
                        break;
                    default:
                        return (null, -1, false, null);
                }

                value = node.Out;
            }

            return (null, -1, false, null);
        }

        private int HeadsFromReshape(string layer, OnnxNode? reshape, int hidden)
        {
            if (reshape is null || reshape.Inputs.Count < 2)
            {
                Fail(layer, "the Q projection is not reshaped into heads");
            }

            // The target shape is a constant [B, T, H, D] / [0, 0, H, D], or a Concat whose last two parts are constants.
            var dims = new List<long>();
            var shapeConst = _g.IntConstant(reshape.In(1));
            if (shapeConst is not null)
            {
                dims.AddRange(shapeConst);
            }
            else if (_g.Producer(reshape.In(1)) is { OpType: "Concat" } concat)
            {
                foreach (string part in concat.Inputs)
                {
                    var c = _g.IntConstant(part);
                    if (c is null) dims.Add(-1);
                    else dims.AddRange(c);
                }
            }

            if (dims.Count != 4 || dims[2] <= 0 || dims[3] <= 0 || dims[2] > hidden || dims[3] > hidden || dims[2] * dims[3] != hidden)
            {
                Fail(layer, $"the Q Reshape target [{string.Join(", ", dims)}] is not [B, T, H, D] with H·D = {hidden}");
            }

            return (int)dims[2];
        }

        /// <summary>From a computed value through Transpose/Reshape to a dense with weights in×out.</summary>
        private Linear? TraceToLinear(string value, int inFeatures, int outFeatures)
        {
            for (int step = 0; step < 6; step++)
            {
                var linear = Linears(value).FirstOrDefault(l => l.In == inFeatures && l.Out == outFeatures);
                if (linear is not null) return linear;
                var next = _g.Consumers(value).Where(n => n.OpType != "Shape").ToList();
                if (next.Count != 1 || next[0].OpType is not ("Transpose" or "Reshape" or "Identity")) return null;
                value = next[0].Out;
            }

            return null;
        }

        private (Linear Output, string Act) MatchActivation(string layer, Linear inter, int hidden)
        {
            // Breadth-first over the elementwise nodes after the intermediate dense until the output dense appears.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var ops = new HashSet<string>(StringComparer.Ordinal);
            var frontier = new Queue<string>([inter.Output]);
            while (frontier.Count > 0 && seen.Count < 32)
            {
                string v = frontier.Dequeue();
                if (!seen.Add(v)) continue;
                var dense = Linears(v).FirstOrDefault(l => l.In == inter.Out && l.Out == hidden);
                if (dense is not null && v != inter.Output)
                {
                    string? act = ops.Contains("Erf") || ops.Contains("Gelu") ? "gelu"
                        : ops.Contains("Tanh") || ops.Contains("FastGelu") ? "gelu_new"
                        : ops.Contains("Relu") ? "relu"
                        : null;
                    return (dense, act ?? Fail<string>(layer, $"the feed-forward activation (ops {string.Join(", ", ops)}) is not GELU (erf or tanh form) or ReLU"));
                }

                foreach (var node in _g.Consumers(v))
                {
                    if (node.OpType is "Div" or "Mul" or "Add" or "Erf" or "Tanh" or "Pow" or "Gelu" or "FastGelu" or "Relu" or "Sigmoid")
                    {
                        ops.Add(node.OpType);
                        frontier.Enqueue(node.Out);
                    }
                }
            }

            return Fail<(Linear, string)>(layer, $"the intermediate dense '{inter.Output}' does not reach an output dense ({inter.Out} → {hidden}) through an activation");
        }

        private LayerNormMatch ResidualLayerNorm(string prefix, string dense, string residual)
        {
            var add = _g.Consumers(dense).FirstOrDefault(n => n.OpType == "Add" && OnnxGraphIndex.OtherInput(n, dense) == residual)
                ?? Fail<OnnxNode>(prefix, $"the dense output '{dense}' is not added to the residual '{residual}'");
            return TryLayerNorm(add.Out) ?? Fail<LayerNormMatch>(prefix, $"the residual sum '{add.Out}' does not feed a LayerNorm");
        }

        private Linear? MatchPooler(string h, int hidden)
        {
            foreach (var gather in _g.Consumers(h).Where(n => n.OpType == "Gather"))
            {
                long axis = gather.Attributes.TryGetValue("axis", out var a) ? a.Int : 0;
                var index = _g.IntConstant(gather.In(1));
                if (axis != 1 || index is null || index.Length != 1 || index[0] != 0) continue;
                var dense = Linears(gather.Out).FirstOrDefault(l => l.In == hidden && l.Out == hidden);
                if (dense is not null && _g.OnlyConsumer(dense.Output, "Tanh") is not null) return dense;
            }

            return null;
        }

        /// <summary>The dense layers reading <paramref name="x"/>: MatMul + Add(bias), or Gemm with a bias input.</summary>
        private List<Linear> Linears(string x)
        {
            var result = new List<Linear>();
            foreach (var node in _g.Consumers(x))
            {
                if (node.OpType == "MatMul" && node.In(0) == x && _g.FloatConstant(node.In(1), 2) is { } w)
                {
                    var add = _g.OnlyConsumer(node.Out, "Add");
                    var bias = add is null ? null : _g.FloatConstant(OnnxGraphIndex.OtherInput(add, node.Out) ?? string.Empty, 1);
                    if (add is not null && bias is not null && bias.Dims[0] == w.Dims[1])
                    {
                        result.Add(new Linear(node, w, bias, add.Out, WeightIsOutIn: false));
                    }
                }
                else if (node.OpType == "Gemm" && node.In(0) == x && node.Inputs.Count == 3 && _g.FloatConstant(node.In(1), 2) is { } gw && _g.FloatConstant(node.In(2), 1) is { } gb)
                {
                    bool transA = node.Attributes.TryGetValue("transA", out var ta) && ta.Int != 0;
                    bool transB = node.Attributes.TryGetValue("transB", out var tb) && tb.Int != 0;
                    float alpha = node.Attributes.TryGetValue("alpha", out var al) ? al.Float : 1f;
                    float beta = node.Attributes.TryGetValue("beta", out var be) ? be.Float : 1f;
                    if (!transA && alpha == 1f && beta == 1f && gb.Dims[0] == gw.Dims[transB ? 0 : 1])
                    {
                        result.Add(new Linear(node, gw, gb, node.Out, WeightIsOutIn: transB));
                    }
                }
            }

            return result;
        }

        private LayerNormMatch? TryLayerNorm(string x)
        {
            foreach (var node in _g.Consumers(x))
            {
                if (node.OpType == "LayerNormalization" && node.In(0) == x && node.Inputs.Count >= 3)
                {
                    long axis = node.Attributes.TryGetValue("axis", out var a) ? a.Int : -1;
                    float eps = node.Attributes.TryGetValue("epsilon", out var e) ? e.Float : 1e-5f;
                    var gamma = _g.FloatConstant(node.In(1), 1);
                    var beta = _g.FloatConstant(node.In(2), 1);
                    if (axis == -1 && gamma is not null && beta is not null) return new LayerNormMatch(gamma, beta, eps, node.Out);
                }
            }

            // Decomposed: (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * gamma + beta.
            var sub = _g.Consumers(x).FirstOrDefault(n => n.OpType == "Sub" && n.In(0) == x && _g.Producer(n.In(1)) is { OpType: "ReduceMean" } m && m.In(0) == x);
            if (sub is null) return null;
            string centered = sub.Out;
            var pow = _g.OnlyConsumer(centered, "Pow");
            if (pow is null || pow.In(0) != centered || _g.ScalarFloat(pow.In(1)) != 2f) return null;
            var mean2 = _g.OnlyConsumer(pow.Out, "ReduceMean");
            var addEps = mean2 is null ? null : _g.OnlyConsumer(mean2.Out, "Add");
            float? epsValue = addEps is null ? null : _g.ScalarFloat(OnnxGraphIndex.OtherInput(addEps, mean2!.Out) ?? string.Empty);
            var sqrt = addEps is null ? null : _g.OnlyConsumer(addEps.Out, "Sqrt");
            var div = sqrt is null ? null : _g.OnlyConsumer(sqrt.Out, "Div");
            if (epsValue is null || div is null || div.In(0) != centered || div.In(1) != sqrt!.Out) return null;
            var mul = _g.OnlyConsumer(div.Out, "Mul");
            var gammaT = mul is null ? null : _g.FloatConstant(OnnxGraphIndex.OtherInput(mul, div.Out) ?? string.Empty, 1);
            var addB = mul is null ? null : _g.OnlyConsumer(mul.Out, "Add");
            var betaT = addB is null ? null : _g.FloatConstant(OnnxGraphIndex.OtherInput(addB, mul!.Out) ?? string.Empty, 1);
            return gammaT is null || betaT is null ? null : new LayerNormMatch(gammaT, betaT, epsValue.Value, addB!.Out);
        }

        private void Add(string name, Tensor tensor) => _tensors.Add(new(name, tensor));

        // F32 copy of an initializer, optionally transposed [in, out] → [out, in]. Cached per initializer, so a hostile
        // graph that points many roles at one large initializer cannot multiply the memory it takes.
        private Tensor Convert(OnnxTensor source, bool transpose)
        {
            if (!_converted.TryGetValue((source, transpose), out var tensor))
            {
                tensor = source.ToFloatTensor();
                if (transpose) tensor = tensor.Transpose(0, 1).Contiguous();
                _converted[(source, transpose)] = tensor;
            }

            return tensor;
        }

        private void AddLayerNorm(string prefix, LayerNormMatch ln)
        {
            Add(prefix + ".weight", Convert(ln.Gamma, false));
            Add(prefix + ".bias", Convert(ln.Beta, false));
        }

        private void AddLinear(string prefix, Linear linear)
        {
            // Hugging Face Linear stores [out, in]; MatMul exports store [in, out] (x · W), Gemm with transB stores [out, in].
            Add(prefix + ".weight", Convert(linear.Weight, transpose: !linear.WeightIsOutIn));
            Add(prefix + ".bias", Convert(linear.Bias, false));
        }

        [DoesNotReturn]
        private void Fail(string element, string rule) => throw new OnnxFormatException(model.Path, element, $"{NotBert}: {rule}");

        [DoesNotReturn]
        private T Fail<T>(string element, string rule) => throw new OnnxFormatException(model.Path, element, $"{NotBert}: {rule}");
    }
}
