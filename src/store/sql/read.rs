//! Lookups: a [`Load`] becomes one JSON request document; the dialect's read statement
//! answers it with one JSON document, decoded here into typed records.
//!
//! The request:
//!
//! ```json
//! { "flow": ["<hex digest>", …], "by": "id" | "login_id" | "email" | "member" | "of_flow" | null,
//!   "value": "<lookup value>" | null, "account_flows": true | false, "flows_of": "<account id>" | null,
//!   "counters": ["<key>", …], "account_counters": ["<prefix>", …],
//!   "taken_email": "<canonical address>" | null }
//! ```
//!
//! The answer (any part may be `null` or missing when nothing was found):
//!
//! ```json
//! { "flow": { "i": <candidate index>, "id": …, "version": …, "state": {…} },
//!   "account": { "version": …, "data": {…} },
//!   "account_flows": [{ "id": …, "version": …, "state": {…} }, …],   (creation order)
//!   "counters": [{ "i": <key index>, "version": …, "data": {…} }, …],  (found ones only)
//!   "account_counters": [{ "i": <prefix index>, "version": …, "data": {…} }, …],
//!   "address_taken": true | false }
//! ```

use serde::{Deserialize, Serialize};

use super::{corrupt, from_json, to_json, version_from_db};
use crate::domain::EmailAddress;
use crate::flow::FlowState;
use crate::ports::{
    Account, AccountId, AccountLoad, AccountLookup, Counter, FlowId, FlowRecord, Load, Loaded,
    StoreError, Versioned,
};

#[derive(Serialize)]
struct Request<'a> {
    flow: Vec<String>,
    by: Option<&'static str>,
    value: Option<&'a str>,
    account_flows: bool,
    flows_of: Option<&'a str>,
    counters: &'a [String],
    account_counters: &'a [String],
    taken_email: Option<&'a str>,
}

/// The request document of `load`. `flows_of` asks for the flows of that account
/// whether or not an account row exists ([`Store::flows_of_account`](crate::ports::Store::flows_of_account)).
pub(crate) fn request(load: &Load, flows_of: Option<&AccountId>) -> Result<String, StoreError> {
    let (by, value) = match &load.account {
        None => (None, None),
        Some(AccountLoad::OfFlow) => (Some("of_flow"), None),
        Some(AccountLoad::By(lookup)) => {
            let (by, value) = match lookup {
                AccountLookup::Id(id) => ("id", id.as_str()),
                AccountLookup::LoginId(l) => ("login_id", l.as_str()),
                AccountLookup::Email(e) => ("email", e.canonical()),
                AccountLookup::Member(m) => ("member", m.as_str()),
            };
            (Some(by), Some(value))
        }
    };
    to_json(&Request {
        flow: load.flow.iter().map(|d| d.to_hex()).collect(),
        by,
        value,
        account_flows: load.account_flows || flows_of.is_some(),
        flows_of: flows_of.map(AccountId::as_str),
        counters: &load.counters,
        account_counters: &load.account_counters,
        taken_email: load.address_taken.as_ref().map(EmailAddress::canonical),
    })
}

#[derive(Deserialize)]
struct Answer {
    flow: Option<FlowRow>,
    account: Option<Row<Account>>,
    account_flows: Option<Vec<FlowRow>>,
    counters: Option<Vec<Row<Counter>>>,
    account_counters: Option<Vec<Row<Counter>>>,
    #[serde(default)]
    address_taken: bool,
}

/// A flow row; `i` is the index of the candidate digest that found it.
#[derive(Deserialize)]
struct FlowRow {
    #[serde(default)]
    i: usize,
    id: String,
    version: i64,
    state: FlowState,
}

/// An account or counter row; `i` is the index of the request entry it answers.
#[derive(Deserialize)]
struct Row<T> {
    #[serde(default)]
    i: usize,
    version: i64,
    data: T,
}

impl FlowRow {
    fn decode(self) -> Result<Versioned<FlowRecord>, StoreError> {
        Ok(Versioned {
            version: version_from_db(self.version)?,
            value: FlowRecord {
                id: FlowId::from_stored(self.id),
                state: self.state,
            },
        })
    }
}

impl<T> Row<T> {
    fn decode(self) -> Result<Versioned<T>, StoreError> {
        Ok(Versioned {
            version: version_from_db(self.version)?,
            value: self.data,
        })
    }
}

/// One slot per requested entry, filled by index.
fn by_index<T>(
    len: usize,
    found: Option<Vec<Row<T>>>,
) -> Result<Vec<Option<Versioned<T>>>, StoreError> {
    let mut out: Vec<Option<Versioned<T>>> = (0..len).map(|_| None).collect();
    for f in found.unwrap_or_default() {
        let slot = out
            .get_mut(f.i)
            .ok_or_else(|| corrupt("answer names an entry that was not asked for"))?;
        *slot = Some(f.decode()?);
    }
    Ok(out)
}

/// Decodes the answer document to `load`.
pub(crate) fn answer(load: &Load, text: &str) -> Result<Loaded, StoreError> {
    let answer: Answer = from_json(text)?;
    let flow = match answer.flow {
        None => None,
        Some(found) => {
            let digest = load
                .flow
                .get(found.i)
                .copied()
                .ok_or_else(|| corrupt("answer names a digest that was not asked for"))?;
            Some((found.decode()?, digest))
        }
    };
    Ok(Loaded {
        flow,
        account: answer.account.map(Row::decode).transpose()?,
        account_flows: answer
            .account_flows
            .unwrap_or_default()
            .into_iter()
            .map(FlowRow::decode)
            .collect::<Result<_, _>>()?,
        counters: by_index(load.counters.len(), answer.counters)?,
        account_counters: by_index(load.account_counters.len(), answer.account_counters)?,
        address_taken: answer.address_taken,
    })
}
