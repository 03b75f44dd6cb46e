"""The layer below the benchmark harness and SoftCoT: the table of benchmark datasets and
their loaders (:mod:`evaluation.tasks`, :mod:`evaluation.problems`), the scorers
(:mod:`evaluation.scoring`, with math-verify and the code sandbox behind it), the optional
LLM judge for math answers math-verify rejects (:mod:`evaluation.judge`), and where the
project keeps its data and default model (:mod:`evaluation.locations`). It imports no other
package of this repository."""
