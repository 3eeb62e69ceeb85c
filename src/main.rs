use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use permetrix::cli::{BackupArgs, Cli, Command, ImportSource, RestoreArgs, ServeArgs};
use permetrix::server::telemetry::LogFormat;
use permetrix::server::{Application, StoreKind};
use secrecy::ExposeSecret;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Declared before `result` so that it is dropped (and the log flushed) after the
    // error below is logged.
    let _log;
    let result = match cli.command {
        Command::Run(args) => {
            let code = actix_rt::System::new().block_on(permetrix_client::run::run(args));
            return ExitCode::from(code);
        }
        Command::Serve(args) => {
            permetrix::ops::startup_checks::private_umask();
            _log = permetrix::server::telemetry::init(args.log_format);
            permetrix::server::panic_hook::install_panic_hook();
            actix_rt::System::new().block_on(serve(*args))
        }
        Command::Backup(args) => {
            permetrix::ops::startup_checks::private_umask();
            _log = permetrix::server::telemetry::init(LogFormat::Text);
            backup(&args)
        }
        Command::Restore(args) => {
            permetrix::ops::startup_checks::private_umask();
            _log = permetrix::server::telemetry::init(LogFormat::Text);
            restore(&args)
        }
        Command::Load(args) => permetrix_client::load::main(args),
        Command::Token(args) => {
            let code = actix_rt::System::new().block_on(permetrix_client::token::main(args));
            return ExitCode::from(code);
        }
        Command::Import(args) => {
            _log = permetrix::server::telemetry::init(LogFormat::Text);
            match args.source {
                ImportSource::Sqlite(args) => import(&args.options()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config();
    let app = Application::build(config.clone()).await?;
    let mut out = std::io::stdout().lock();
    if let Some(token) = &app.startup.generated_admin_token {
        writeln!(
            out,
            "\nOperator token (shown once; set PERMETRIX_ADMIN_TOKEN to choose your own):\n  {}\n",
            token.expose_secret()
        )?;
    }
    if let Some(creds) = &app.startup.demo {
        writeln!(out, "{}", creds.banner(app.addr()))?;
    } else if app.startup.demo_already_present {
        writeln!(
            out,
            "Demo data is already present; its credentials were printed when it was first seeded."
        )?;
    }
    out.flush()?;
    drop(out);
    app.run_until_stopped().await
}

fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let store = args.store.kind();
    let (stats, source) = permetrix::ops::backup::backup(&args.data_dir, &store, &args.out)?;
    let of = match store {
        StoreKind::Sled => format!("{source} in {}", args.data_dir.display()),
        StoreKind::Postgres(_) => source.to_owned(),
    };
    println!(
        "backup of {of} written to {}: {} entries, {} file(s), {} bytes",
        args.out.display(),
        stats.entries,
        stats.files,
        stats.bytes
    );
    Ok(())
}

fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let store = args.store.kind();
    let restored = permetrix::ops::backup::restore(&args.from, args.data_dir.as_deref(), &store)?;
    let into = match (&store, &args.data_dir) {
        (StoreKind::Sled, Some(dir)) => dir.display().to_string(),
        _ => "the PostgreSQL store".to_owned(),
    };
    println!(
        "restored {} into {into}: {} entries, {} file(s)",
        args.from.display(),
        restored.stats.entries,
        restored.stats.files
    );
    if !restored.had_key {
        println!(
            "warning: the backup holds no server.key; give the server the original key (the \
             file in the data directory, or PERMETRIX_SERVER_KEY), or API keys and vendor \
             signing secrets will not work"
        );
    } else if !restored.key_in_place {
        println!(
            "the backup's server.key was not written to the database: start every broker with \
             PERMETRIX_SERVER_KEY set to that key's 128 hex characters (the original data \
             directory's server.key; or restore the backup into a scratch --data-dir and read \
             it there), or API keys and vendor signing secrets will not work"
        );
    }
    Ok(())
}

fn import(options: &permetrix::ops::import::Options) -> anyhow::Result<()> {
    let outcome = permetrix::ops::import::run(options)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{}", outcome.report)?;
    out.flush()?;
    if outcome.refused {
        anyhow::bail!("the import was refused; nothing was written (the report above says why)");
    }
    Ok(())
}
