//! The graph: nodes deduplicated by digest, inputs always added before their users, so
//! node order is a valid execution order and cycles cannot be expressed.

use std::collections::HashMap;

use serde::Serialize;

use crate::op::{Op, OpDigest};

/// Index of a node in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NodeId(pub usize);

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub digest: OpDigest,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    /// What the user wrote, for progress and errors (`[build 3/5] RUN make`); several
    /// descriptions when one op serves several places.
    pub descriptions: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("op input {0:?} does not exist in this graph")]
    UnknownInput(NodeId),
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Graph {
    nodes: Vec<Node>,
    #[serde(skip)]
    by_digest: HashMap<OpDigest, NodeId>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `op` on `inputs`, or returns the existing node with the same digest.
    pub fn add(
        &mut self,
        op: Op,
        inputs: Vec<NodeId>,
        description: impl Into<String>,
    ) -> Result<NodeId, GraphError> {
        let mut input_digests = Vec::with_capacity(inputs.len());
        for input in &inputs {
            let node = self
                .nodes
                .get(input.0)
                .ok_or(GraphError::UnknownInput(*input))?;
            input_digests.push(node.digest.clone());
        }
        let digest = OpDigest::of(&op, &input_digests);
        let description = description.into();
        if let Some(&existing) = self.by_digest.get(&digest) {
            if let Some(node) = self.nodes.get_mut(existing.0)
                && !description.is_empty()
                && !node.descriptions.contains(&description)
            {
                node.descriptions.push(description);
            }
            return Ok(existing);
        }
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            digest: digest.clone(),
            op,
            inputs,
            descriptions: if description.is_empty() {
                vec![]
            } else {
                vec![description]
            },
        });
        self.by_digest.insert(digest, id);
        Ok(id)
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0)
    }

    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node `roots` need, inputs first.
    pub fn required(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut needed = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            match needed.get_mut(id.0) {
                Some(flag) if !*flag => *flag = true,
                _ => continue,
            }
            if let Some(node) = self.nodes.get(id.0) {
                stack.extend(node.inputs.iter().copied());
            }
        }
        needed
            .iter()
            .enumerate()
            .filter(|(_, n)| **n)
            .map(|(i, _)| NodeId(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{FileAction, FileOp};

    fn mkdir(path: &str) -> Op {
        Op::File(FileOp {
            actions: vec![FileAction::Mkdir {
                path: path.into(),
                mode: 0o755,
                parents: true,
                owner: None,
            }],
        })
    }

    #[test]
    fn identical_ops_are_one_node() {
        let mut g = Graph::new();
        let base = g.add(Op::Scratch, vec![], "FROM scratch").unwrap();
        let a = g
            .add(mkdir("/a"), vec![base], "[one 1/1] WORKDIR /a")
            .unwrap();
        let b = g
            .add(mkdir("/a"), vec![base], "[two 1/1] WORKDIR /a")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(g.len(), 2);
        assert_eq!(g.node(a).unwrap().descriptions.len(), 2);
        let c = g.add(mkdir("/c"), vec![base], "").unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn required_walks_inputs_only() {
        let mut g = Graph::new();
        let base = g.add(Op::Scratch, vec![], "").unwrap();
        let a = g.add(mkdir("/a"), vec![base], "").unwrap();
        let b = g.add(mkdir("/b"), vec![base], "").unwrap();
        let merged = g.add(Op::Merge, vec![a, base], "").unwrap();
        assert_eq!(g.required(&[merged]), vec![base, a, merged]);
        assert_eq!(g.required(&[b]), vec![base, b]);
        assert!(g.add(Op::Merge, vec![NodeId(99)], "").is_err());
    }
}
