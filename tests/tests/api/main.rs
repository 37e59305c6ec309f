//! End-to-end tests over real loopback sockets: one binary, one module per API area.

mod browser;
mod connections;
mod contract;
mod contract_weather;
mod control;
mod docs;
mod faithful;
mod hostile;
mod leaf;
mod load;
mod m2m_auth;
mod m2m_create;
mod m2m_hostile;
mod m2m_limits;
mod pages;
mod shadow;
mod shared;
mod tenant_budget;
mod tls;
mod webhooks;
mod wire;
