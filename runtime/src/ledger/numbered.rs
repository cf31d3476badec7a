//! Items numbered consecutively and forgotten roughly in the order they were made (holds,
//! idempotency answers). A deque indexed by number: no hashing, no rehash that moves every
//! item as the table grows.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Numbered<T> {
    /// Number of `items[0]`.
    base: u64,
    /// `None`: forgotten while an older item is still kept.
    items: VecDeque<Option<T>>,
}

impl<T> Numbered<T> {
    pub(crate) fn starting_at(base: u64) -> Self {
        Numbered {
            base,
            items: VecDeque::new(),
        }
    }

    /// The number the next `push` gets.
    pub(crate) fn next_number(&self) -> u64 {
        self.base + self.items.len() as u64
    }

    pub(crate) fn push(&mut self, item: T) -> u64 {
        let number = self.next_number();
        self.items.push_back(Some(item));
        number
    }

    fn index(&self, number: u64) -> Option<usize> {
        usize::try_from(number.checked_sub(self.base)?)
            .ok()
            .filter(|i| *i < self.items.len())
    }

    pub(crate) fn get(&self, number: u64) -> Option<&T> {
        self.items.get(self.index(number)?)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, number: u64) -> Option<&mut T> {
        let index = self.index(number)?;
        self.items.get_mut(index)?.as_mut()
    }

    pub(crate) fn front(&self) -> Option<&T> {
        self.items.iter().flatten().next()
    }

    pub(crate) fn remove(&mut self, number: u64) -> Option<T> {
        let index = self.index(number)?;
        let item = self.items.get_mut(index)?.take();
        while matches!(self.items.front(), Some(None)) {
            self.items.pop_front();
            self.base += 1;
        }
        item
    }

    /// Removes and returns the oldest item kept.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        self.base += 1;
        while matches!(self.items.front(), Some(None)) {
            self.items.pop_front();
            self.base += 1;
        }
        item
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().flatten()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::Numbered;

    #[test]
    fn numbers_survive_forgetting_out_of_order() {
        let mut n = Numbered::starting_at(1);
        for i in 1..=5u64 {
            assert_eq!(n.push(i * 10), i);
        }
        assert_eq!(n.remove(3), Some(30));
        assert_eq!(n.remove(1), Some(10));
        assert_eq!(n.get(2), Some(&20));
        assert_eq!(n.get(3), None);
        assert_eq!(n.remove(2), Some(20));
        assert_eq!(n.front(), Some(&40));
        assert_eq!(n.push(60), 6);
        assert_eq!(n.len(), 3);
    }
}
