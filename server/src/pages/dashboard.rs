//! placeholder
use crate::app::App;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;
pub fn routes(_app: App) -> BoxedFilter<(Response,)> {
    warp::path!("ui-x").map(|| Response::new("".into())).boxed()
}
