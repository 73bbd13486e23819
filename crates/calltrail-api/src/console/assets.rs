//! The console's static files, compiled into the binary (`include_str!`): nothing is fetched at
//! run time. Each is linked with a hash of its content, so browsers may cache it for good.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

use super::page;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The file name under `/assets/`.
    pub name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The stylesheet.
pub const STYLE: &Asset = &Asset {
    name: "console.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("assets/console.css"),
};

/// The progressive-enhancement script (every page works without it).
pub const SCRIPT: &Asset = &Asset {
    name: "console.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/console.js"),
};

/// The favicon (declared by every page, so browsers never ask for `/favicon.ico`).
pub const ICON: &Asset = &Asset {
    name: "icon.svg",
    content_type: "image/svg+xml",
    body: include_str!("assets/icon.svg"),
};

const ALL: [&Asset; 3] = [STYLE, SCRIPT, ICON];

/// The first 12 hex digits of each asset's sha256, in the order of `ALL`.
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ALL.iter()
        .map(|asset| hex::encode(Sha256::digest(asset.body.as_bytes()))[..12].to_owned())
        .collect()
});

/// The URL of an asset, with its content hash (`/assets/console.css?v=…`).
pub fn path(asset: &Asset) -> String {
    let version = ALL
        .iter()
        .position(|a| a.name == asset.name)
        .and_then(|i| VERSIONS.get(i))
        .map_or("", String::as_str);
    format!("/assets/{}?v={version}", asset.name)
}

/// `GET /assets/{name}`.
pub async fn serve(name: web::Path<String>) -> HttpResponse {
    let Some(asset) = ALL.iter().find(|a| a.name == name.as_str()) else {
        return page::not_found();
    };
    let mut response = HttpResponse::Ok();
    page::secure(&mut response);
    response
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .content_type(asset.content_type)
        .body(asset.body)
}
