using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Linformer.MLNet.Interop;

/// <summary>
/// Builds <see cref="SchemaShape.Column"/>s, which an estimator's <c>GetOutputSchema(SchemaShape)</c> returns but whose
/// only constructor ML.NET keeps internal.
/// </summary>
internal static class SchemaShapes
{
    /// <summary><c>SchemaShape.Column(string, VectorKind, DataViewType, bool, SchemaShape)</c>.</summary>
    internal static readonly InternalMember<ConstructorInfo> ColumnConstructor = InternalMember.Constructor(
        () => typeof(SchemaShape.Column), "SchemaShape.Column(string, VectorKind, DataViewType, bool, SchemaShape)",
        () => [typeof(string), typeof(SchemaShape.Column.VectorKind), typeof(DataViewType), typeof(bool), typeof(SchemaShape)],
        "the columns an estimator promises in GetOutputSchema", MLNetInternals.Core);

    /// <summary>A schema-shape column, as ML.NET's own estimators make them.</summary>
    /// <param name="name">The column name.</param>
    /// <param name="vecKind">Scalar, vector of known size, or vector of variable size.</param>
    /// <param name="itemType">The item type (of the vector's items for vectors).</param>
    /// <param name="isKey">Whether the item type is a key type.</param>
    /// <param name="annotations">The column's annotations, or null.</param>
    public static SchemaShape.Column NewColumn(string name, SchemaShape.Column.VectorKind vecKind, DataViewType itemType, bool isKey, SchemaShape? annotations)
        => (SchemaShape.Column)MLNetInternals.Construct(ColumnConstructor.Value, name, vecKind, itemType, isKey, annotations);
}
