using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Linformer.MLNet.Onnx;

/// <summary>
/// Builds one ONNX graph node by node (default domain, opset <see cref="Opset"/>): initializers from TorchSharp
/// tensors, int64 constants, and the handful of operators the exporter needs, each returning its output's name.
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>The opset the graph is written for: 17 is the first with LayerNormalization.</summary>
    public const int Opset = 17;

    private readonly GraphProto graph = new() { Name = "linformer" };
    private readonly Dictionary<string, string> constants = new(StringComparer.Ordinal);
    private int next;

    private string Fresh(string hint) => string.Create(CultureInfo.InvariantCulture, $"{hint}_{next++}");

    /// <summary>Adds a float32 initializer holding a copy of <paramref name="value"/> (any device, any float dtype).</summary>
    public string Initializer(string name, Tensor value)
    {
        using var scope = NewDisposeScope();
        var cpu = value.detach().to_type(ScalarType.Float32).cpu().contiguous();
        var proto = new TensorProto { Name = Fresh(name), DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(cpu.shape);
        proto.RawData = ByteString.CopyFrom(cpu.bytes);   // little-endian float32, as ONNX's raw_data requires
        graph.Initializer.Add(proto);
        return proto.Name;
    }

    /// <summary>Adds an initializer of raw bytes with the given element type and shape.</summary>
    public string Initializer(string name, TensorProto.Types.DataType type, long[] dims, ReadOnlySpan<byte> raw)
    {
        var proto = new TensorProto { Name = Fresh(name), DataType = (int)type };
        proto.Dims.AddRange(dims);
        proto.RawData = ByteString.CopyFrom(raw);
        graph.Initializer.Add(proto);
        return proto.Name;
    }

    /// <summary>Adds a 1-D float32 initializer holding <paramref name="values"/>.</summary>
    public string Initializer(string name, float[] values)
        => Initializer(name, TensorProto.Types.DataType.Float, new long[] { values.Length }, MemoryMarshal.AsBytes(values.AsSpan()));   // little-endian

    /// <summary>An int64 constant (1-D, or 0-D when <paramref name="scalar"/>), shared by every use of the same values.</summary>
    public string Int64s(long[] values, bool scalar = false)
    {
        string key = (scalar ? "s:" : "v:") + string.Join(",", values.Select(v => v.ToString(CultureInfo.InvariantCulture)));
        if (constants.TryGetValue(key, out var existing)) return existing;
        var proto = new TensorProto { Name = Fresh("const"), DataType = (int)TensorProto.Types.DataType.Int64 };
        if (!scalar) proto.Dims.Add(values.Length);
        proto.Int64Data.AddRange(values);
        graph.Initializer.Add(proto);
        return constants[key] = proto.Name;
    }

    /// <summary>A float32 scalar constant, shared by every use of the same value.</summary>
    public string Float(float value)
    {
        string key = "f:" + BitConverter.SingleToInt32Bits(value).ToString(CultureInfo.InvariantCulture);
        if (constants.TryGetValue(key, out var existing)) return existing;
        var proto = new TensorProto { Name = Fresh("const"), DataType = (int)TensorProto.Types.DataType.Float };
        proto.FloatData.Add(value);
        graph.Initializer.Add(proto);
        return constants[key] = proto.Name;
    }

    /// <summary>Adds a node and returns its (single) output.</summary>
    public string Node(string op, string[] inputs, params AttributeProto[] attributes)
    {
        var output = Fresh(op.ToLowerInvariant());
        var node = new NodeProto { OpType = op, Name = output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        graph.Node.Add(node);
        return output;
    }

    /// <summary>Adds a node with <paramref name="outputs"/> outputs and returns their names.</summary>
    public string[] Node(string op, string[] inputs, int outputs)
    {
        string name = Fresh(op.ToLowerInvariant());
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        var names = Enumerable.Range(0, outputs).Select(i => string.Create(CultureInfo.InvariantCulture, $"{name}_{i}")).ToArray();
        node.Output.AddRange(names);
        graph.Node.Add(node);
        return names;
    }

    /// <summary>Renames a value to a graph output name with an Identity node.</summary>
    public void Output(string value, string name, TensorProto.Types.DataType type, params object[] dims)
    {
        var node = new NodeProto { OpType = "Identity", Name = name + "_identity" };
        node.Input.Add(value);
        node.Output.Add(name);
        graph.Node.Add(node);
        graph.Output.Add(ValueInfo(name, type, dims));
    }

    /// <summary>Declares a graph input; a dimension is a fixed <c>long</c>/<c>int</c> or a named (dynamic) <c>string</c>.</summary>
    public string Input(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s
                ? new TensorShapeProto.Types.Dimension { DimParam = s }
                : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, CultureInfo.InvariantCulture) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    /// <summary>An int attribute.</summary>
    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>An ints attribute.</summary>
    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>A float attribute.</summary>
    public static AttributeProto FloatAttribute(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    // Operators with numpy broadcasting where ONNX has it (shapes in the comments of the exporter).
    public string MatMul(string a, string b) => Node("MatMul", new[] { a, b });
    public string Add(string a, string b) => Node("Add", new[] { a, b });
    public string Sub(string a, string b) => Node("Sub", new[] { a, b });
    public string Mul(string a, string b) => Node("Mul", new[] { a, b });
    public string Div(string a, string b) => Node("Div", new[] { a, b });
    public string Reshape(string x, params long[] shape) => Node("Reshape", new[] { x, Int64s(shape) });
    public string Transpose(string x, params long[] perm) => Node("Transpose", new[] { x }, Ints("perm", perm));
    public string Unsqueeze(string x, params long[] axes) => Node("Unsqueeze", new[] { x, Int64s(axes) });
    public string Cast(string x, TensorProto.Types.DataType to) => Node("Cast", new[] { x }, Int("to", (long)to));

    /// <summary>The ONNX model around this graph.</summary>
    public ModelProto ToModel(string producerVersion)
    {
        var model = new ModelProto
        {
            IrVersion = 8,   // ONNX 1.10+: the IR version that goes with opset 17
            ProducerName = "Linformer.MLNet",
            ProducerVersion = producerVersion,
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }
}
